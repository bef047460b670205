"""Per-stage latency of the image → bodies pipeline for each available inference backend.

For 1, 4 and 8 people (boxes on a synthetic 640×480 image) it runs
:meth:`pare_ros.estimator.BodyEstimator.estimate` and reports p50/p95 of the stages the
estimator times — crop (CPU OpenCV crops + normalisation), network, SMPL, post-processing —
and end to end, over ``--frames`` frames after ``--warmup`` frames; then the reference-style
unbatched baseline (one ``estimate`` call, i.e. one crop + one network forward + one SMPL
run, per person) and the unbatched/batched end-to-end ratio. With CUDA it also times the
batched GPU crop (:func:`pare_ros.backends.gpu_preprocess.crop_batch`). Peak RSS
(``resource.getrusage``, the process-wide maximum so far) is printed after each backend.

Weights are untrained and the body model synthetic: timing does not depend on the values.

Usage::

    python scripts/benchmark.py                       # 100 frames per case (slow on CPU)
    python scripts/benchmark.py --frames 5 --warmup 1 --backends onnxruntime torch-cpu
    python scripts/benchmark.py --json out/benchmark.json
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pare_ros.assets import synthetic_smpl_dir, untrained_network  # noqa: E402
from pare_ros.body_model import BodyModel  # noqa: E402
from pare_ros.estimator import BodyEstimator  # noqa: E402

STAGES = ("crop", "network", "smpl", "postprocess", "total")


def boxes_for(people: int, width: int = 640, height: int = 480) -> np.ndarray:
    """``people`` standing-person boxes spread over the image (overlapping when many)."""
    xs = np.linspace(20, width - 140, people)
    return np.array([[x, 60 + 10 * (i % 3), x + 120, 440 - 10 * (i % 2)] for i, x in enumerate(xs)])


def percentiles(values):
    arr = np.asarray(values) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_backends(names, model, onnx_path):
    """name → (backend, device) for the requested backends that can run here."""
    from pare_ros.backends import select

    made = {}
    for name in names:
        try:
            backend, reason = select.select_backend(     # own copy: TorchBackend moves its model
                name, model=copy.deepcopy(model), onnx_path=onnx_path,
                precision="fp16" if name in ("tensorrt", "torch-cuda") else "fp32",
                engine_policy="auto")
        except Exception as exc:   # noqa: BLE001 - report and go on
            print(f"- {name}: not run ({exc})")
            continue
        device = "cuda" if name in ("tensorrt", "torch-cuda") else "cpu"
        print(f"- {name}: {reason}")
        made[name] = (backend, device)
    return made


def run_case(estimator, image, boxes, frames, warmup, device):
    samples = {s: [] for s in STAGES}
    for i in range(warmup + frames):
        sync(device)
        result = estimator.estimate(image, boxes)
        sync(device)
        if i >= warmup:
            for stage in STAGES:
                samples[stage].append(result.timings[stage])
    return {s: percentiles(v) for s, v in samples.items()}


def run_unbatched(estimator, image, boxes, frames, warmup, device):
    totals = []
    for i in range(warmup + frames):
        sync(device)
        t = time.perf_counter()
        for box in boxes:
            estimator.estimate(image, box[None])
        sync(device)
        if i >= warmup:
            totals.append(time.perf_counter() - t)
    return percentiles(totals)


def gpu_crop_times(image, boxes, frames):
    from pare_ros.backends.gpu_preprocess import crop_batch
    from pare_ros.preprocessing import box_to_crop

    gpu_image = torch.from_numpy(image).cuda()
    crops = [box_to_crop(b) for b in boxes]
    times = []
    for i in range(frames + 3):
        torch.cuda.synchronize()
        t = time.perf_counter()
        crop_batch(gpu_image, crops)
        torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t)
    return percentiles(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--backends", nargs="+",
                        default=["tensorrt", "torch-cuda", "onnxruntime", "torch-cpu"])
    parser.add_argument("--onnx", type=Path, default=None,
                        help="exported model (default: export the untrained network to a temp file)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unbatched baseline")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    model = untrained_network()
    onnx_path = args.onnx
    if onnx_path is None and any(b in args.backends for b in ("onnxruntime", "tensorrt")):
        from pare_ros.backends.onnx_export import export_onnx

        onnx_path = Path(tempfile.mkdtemp(prefix="pare_bench_")) / "pare_untrained.onnx"
        export_onnx(model, onnx_path, {"checkpoint": "UNTRAINED (benchmark)"})
    body_model = BodyModel.from_dir(synthetic_smpl_dir("neutral"))

    print(f"machine: {platform.machine()} {platform.processor()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    print(f"frames {args.frames} after {args.warmup} warm-up; people {args.people}; times in ms (p50/p95)")
    backends = make_backends(args.backends, model, onnx_path)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    report = {"frames": args.frames, "warmup": args.warmup, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "results": []}

    header = "| backend | people | " + " | ".join(STAGES) + " | unbatched total | unbatched/batched |"
    lines = [header, "|" + "---|" * (len(STAGES) + 4)]
    for name, (backend, device) in backends.items():
        estimator = BodyEstimator(backend, body_model.to(device), device=device)
        for people in args.people:
            boxes = boxes_for(people)
            stats = run_case(estimator, image, boxes, args.frames, args.warmup, device)
            unbatched = None if args.no_baseline else run_unbatched(
                estimator, image, boxes, args.frames, min(args.warmup, 1), device)
            ratio = unbatched[0] / stats["total"][0] if unbatched else None
            row = {"backend": name, "people": people, **{s: stats[s] for s in STAGES},
                   "unbatched_total": unbatched, "ratio": ratio}
            if device == "cuda":
                row["gpu_crop"] = gpu_crop_times(image, boxes, args.frames)
            report["results"].append(row)
            cells = [f"{stats[s][0]:.1f} / {stats[s][1]:.1f}" for s in STAGES]
            cells.append(f"{unbatched[0]:.1f} / {unbatched[1]:.1f}" if unbatched else "–")
            cells.append(f"{ratio:.2f}×" if ratio else "–")
            lines.append(f"| {name} | {people} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
        rss = peak_rss_mb()
        report.setdefault("peak_rss_mb", {})[name] = rss
        print(f"  peak RSS after {name}: {rss:.0f} MB")
    print("\n" + "\n".join(lines))
    for row in report["results"]:
        if "gpu_crop" in row:
            print(f"GPU batched crop ({row['backend']}, {row['people']} people): "
                  f"{row['gpu_crop'][0]:.2f} / {row['gpu_crop'][1]:.2f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
