"""FP16 vs FP32: how far PARE's 3D joints move when the network runs in half precision.

Two input sets, both through the same float32 SMPL:

* ``fixture``: the parity fixture's two normalised inputs with its weights (official layout,
  seeded random values) — or ``--checkpoint``'s weights on the same inputs;
* ``real``: crops of real photos (scikit-image's astronaut, full-frame box; its cameraman, the
  HOG detector's box), each also shifted and rescaled (``--jitter`` boxes per photo), through
  the node's :class:`~pare_ros.estimator.BodyEstimator` with camera intrinsics.

For each person: per-joint Euclidean distance of the 24 SMPL joints, in the camera frame (with
translation) and root-relative (pelvis subtracted, as MPJPE), in mm; the largest joint-rotation
difference in degrees; mean and max over people.

Half precision is ``torch.autocast(float16)`` on ``--device``: on CUDA that is the node's
``torch-cuda`` fp16 backend; on a CPU it is PyTorch's CPU float16 autocast, which emulates the
rounding (slowly: ~30 s per crop here) but not the GPU kernels. TensorRT's FP16 engines choose
their own kernels: on a GPU machine compare two engines with ``--engines FP32 FP16``.

Usage::

    python scripts/precision_accuracy.py                       # fixture + real crops, CPU
    python scripts/precision_accuracy.py --device cuda --jitter 8 --json out/fp16.json
    python scripts/precision_accuracy.py --checkpoint model/checkpoints/pare_w_3dpw_checkpoint.ckpt
    python scripts/precision_accuracy.py --device cuda \
        --engines model/onnx/pare_hrnet_w32.fp32.b8.engine model/onnx/pare_hrnet_w32.fp16.b8.engine
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pare_ros.assets import synthetic_smpl_dir  # noqa: E402
from pare_ros.body_model import BodyModel  # noqa: E402
from pare_ros.estimator import BodyEstimator  # noqa: E402
from pare_ros.inference_cli import load_image_rgb  # noqa: E402
from pare_ros.network.checkpoint import load_network  # noqa: E402
from pare_ros.backends.contract import OUTPUT_NAMES  # noqa: E402
from pare_ros import model_files  # noqa: E402

FIXTURE = Path(os.environ.get("PARE_ROS_FIXTURES", REPO.parent / "shared" / "fixtures")) \
    / "pare_hrnet_w32_reference_outputs.pt"
FOCAL_CROP = 5000.0          # PARE's crop-space focal length (pred_cam_t)


class AutocastNetwork:
    """The network under ``torch.autocast(float16)`` on its device (outputs as float32).

    Not :class:`~pare_ros.backends.torch_backend.TorchBackend`: that refuses fp16 on a CPU
    (far slower than fp32 there), which is exactly what this study runs on a CPU."""

    def __init__(self, model: torch.nn.Module, half: bool) -> None:
        self.model, self.half = model, half
        self.device_type = next(model.parameters()).device.type

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        context = (torch.autocast(device_type=self.device_type, dtype=torch.float16) if self.half
                   else contextlib.nullcontext())
        with context:
            out = self.model(images)
        return {name: out[name].float() for name in OUTPUT_NAMES}


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle of a⁻¹b for rotation matrices [..., 3, 3] (degrees)."""
    relative = np.einsum("...ji,...jk->...ik", a, b)
    cos = np.clip((np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def compare(joints32: np.ndarray, joints16: np.ndarray, rot32: np.ndarray, rot16: np.ndarray) -> dict:
    """Per-person differences: joints [P,24,3] metres, rotations [P,24,3,3]."""
    camera = np.linalg.norm(joints16 - joints32, axis=-1) * 1000.0                    # [P,24] mm
    rel32, rel16 = joints32 - joints32[:, :1], joints16 - joints16[:, :1]
    relative = np.linalg.norm(rel16 - rel32, axis=-1) * 1000.0
    angles = rotation_angle_deg(rot32, rot16)                                       # [P,24]
    return {
        "people": int(len(joints32)),
        "camera_frame_mm": {"mean": float(camera.mean()), "max": float(camera.max())},
        "root_relative_mm": {"mean": float(relative.mean()), "max": float(relative.max())},
        "rotation_deg": {"mean": float(angles.mean()), "max": float(angles.max())},
        "per_person_root_relative_mean_mm": [float(v) for v in relative.mean(axis=1)],
    }


def fixture_case(networks: dict, body_model, inputs: torch.Tensor, device: str) -> dict:
    """Joints straight from the network outputs on normalised inputs (crop-space camera)."""
    results = {}
    for half in (False, True):
        out = networks[half](inputs.to(device))
        smpl = body_model(out["pred_pose"], out["pred_shape"])
        s, tx, ty = out["pred_cam"].unbind(-1)
        cam_t = torch.stack([tx, ty, 2 * FOCAL_CROP / (224.0 * s + 1e-9)], dim=-1)
        joints = (smpl.joints + cam_t[:, None]).cpu().numpy()
        results[half] = (joints, out["pred_pose"].cpu().numpy())
    return compare(results[False][0], results[True][0], results[False][1], results[True][1])


def jittered_boxes(box: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``box`` plus ``count - 1`` shifted (±10 % of its size) and rescaled (0.9–1.1) copies."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    boxes = [box]
    for _ in range(count - 1):
        cx, cy = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * w, (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * h
        scale = rng.uniform(0.9, 1.1)
        boxes.append([cx - scale * w / 2, cy - scale * h / 2, cx + scale * w / 2, cy + scale * h / 2])
    return np.asarray(boxes, dtype=np.float64)


def real_photo_boxes(jitter: int) -> List[tuple]:
    from pare_ros.detection.hog import HogPeopleDetector

    astronaut = load_image_rgb("skimage:astronaut")
    h, w = astronaut.shape[:2]
    cameraman = load_image_rgb("skimage:camera")
    # The man is cut by the frame's edges: let HOG's window extend past them (as in test_detection).
    found = HogPeopleDetector(work_height=128, border=0.5, min_box_height=0, score_threshold=0.5).detect(cameraman)
    if len(found.boxes) == 0:
        raise RuntimeError("HOG found nobody in skimage's cameraman photo")
    best = found.boxes[int(np.argmax(found.scores))]
    return [("astronaut (full frame)", astronaut, jittered_boxes(np.array([0, 0, w, h], float), jitter)),
            ("cameraman (HOG box)", cameraman, jittered_boxes(np.asarray(best, float), jitter, seed=1))]


def real_case(networks: dict, body_model, image: np.ndarray, boxes: np.ndarray, device: str) -> dict:
    results = {}
    for half in (False, True):
        estimator = BodyEstimator(networks[half], body_model, device=device)
        bodies = estimator.estimate(image, boxes).bodies
        results[half] = (np.stack([b.joints3d for b in bodies]), np.stack([b.rotmats for b in bodies]))
    return compare(results[False][0], results[True][0], results[False][1], results[True][1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", type=Path, help="official/trained weights (default: the fixture's)")
    parser.add_argument("--smpl-dir", type=Path, help="SMPL files (default: model dir, else synthetic)")
    parser.add_argument("--jitter", type=int, default=3, help="boxes per real photo")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--engines", type=Path, nargs=2, metavar=("FP32_ENGINE", "FP16_ENGINE"),
                        help="compare two TensorRT engines (CUDA) instead of PyTorch autocast")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.engines:
        from pare_ros.backends.tensorrt_engine import TensorRTBackend

        if not args.device.startswith("cuda"):
            parser.error("--engines needs --device cuda")
        networks = {False: TensorRTBackend(args.engines[0]), True: TensorRTBackend(args.engines[1])}
        weights = f"TensorRT engines {args.engines[0]} / {args.engines[1]}"
    else:
        weights = args.checkpoint or FIXTURE
        if not weights.is_file():
            parser.error(f"no weights: {weights} not found (pass --checkpoint or set PARE_ROS_FIXTURES)")
        model = load_network(weights, device=args.device)
        networks = {half: AutocastNetwork(model, half) for half in (False, True)}
    smpl_dir = args.smpl_dir or model_files.default_model_dir()
    try:
        body_model, smpl_label = BodyModel.from_dir(smpl_dir), str(smpl_dir)
    except model_files.MissingModelFileError:
        body_model, smpl_label = BodyModel.from_dir(synthetic_smpl_dir()), "SYNTHETIC SMPL-format model"
    body_model = body_model.to(args.device)
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else \
        (platform.processor() or platform.machine())
    report = {"device": device_name, "torch": torch.__version__, "weights": str(weights),
              "body_model": smpl_label, "cases": {}}
    print(f"device {device_name}, torch {torch.__version__}; weights {weights}; body model {smpl_label}")

    cases = []
    if FIXTURE.is_file():
        inputs = torch.load(FIXTURE, map_location="cpu", weights_only=True)["input"]
        cases.append(("fixture inputs", lambda: fixture_case(networks, body_model, inputs, args.device)))
    if not args.skip_real:
        for name, image, boxes in real_photo_boxes(args.jitter):
            cases.append((f"{name}, {len(boxes)} crops",
                          lambda image=image, boxes=boxes: real_case(networks, body_model, image, boxes, args.device)))
    print(f"{'case':36s} {'people':>6s} {'camera mm mean/max':>20s} {'root-rel mm mean/max':>22s} "
          f"{'rotation deg mean/max':>22s}")
    for name, run in cases:
        t = time.perf_counter()
        r = run()
        r["seconds"] = time.perf_counter() - t
        report["cases"][name] = r
        print(f"{name:36s} {r['people']:6d} "
              f"{r['camera_frame_mm']['mean']:9.2f} / {r['camera_frame_mm']['max']:8.2f} "
              f"{r['root_relative_mm']['mean']:10.2f} / {r['root_relative_mm']['max']:8.2f} "
              f"{r['rotation_deg']['mean']:10.3f} / {r['rotation_deg']['max']:8.3f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
