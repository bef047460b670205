"""GPU acceptance check (driver of scripts/gpu_check.sh): one command on a GPU machine.

Sections, each reported as ok / skipped (with the reason) / FAILED, figures in one JSON:

1. ``tests``: the CUDA-only tests of the suite (``-k cuda``); dry run: their collection.
2. ``network``: PARE forward latency per batch 1/2/4/8 (p50/p95), PyTorch CUDA fp32 eager, fp16
   autocast eager, and CUDA graphs (fp16 + channels-last, fp32), via the node's TorchBackend.
3. ``crops``: the batched GPU crop (``gpu_preprocess.crop_batch``) against OpenCV's warp
   (grey levels) and both timings, 1/4/8 people.
4. ``smpl``: BodyModel on the GPU, full mesh and joints-only, 1/4/8 people; agreement with CPU.
5. ``pipeline``: the whole frame pipeline on the GPU for 1/4/8 people, p50/p95 over
   ``--frames`` (≥ 100) frames, interleaved frame by frame with the reference-style loop (one
   person per eager fp32 forward, OpenCV crops on the CPU) for the per-person ratio. Through the
   node's FrameProcessor where rclpy and the built messages import; else (GPU machine without
   ROS) the ROS-free part of the frame (estimator + tracker), said so in the report.
6. ``precision``: FP16 vs FP32 joints (mm, degrees) on the fixture's weights and inputs when
   present (else the seeded untrained weights) and on real crops (scripts/precision_accuracy.py).
7. ``memory``: peak GPU memory (torch allocator) and the device total in use.

``--dry-run`` runs every section it can on the CPU with tiny counts and a stand-in network
(:class:`TinyNetwork`), so that CI keeps the script working; no figure from it means anything,
and the CUDA-only variants are listed as skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

BATCHES = (1, 2, 4, 8)
PEOPLE = (1, 4, 8)


class Skip(Exception):
    """A section (or part) that cannot run here; the message says why."""


def p50_p95(seconds) -> list:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return [round(float(np.percentile(ms, 50)), 3), round(float(np.percentile(ms, 95)), 3)]


def people_counts(args) -> tuple:
    return (1,) if args.dry_run else PEOPLE


def timed(fn, iters: int, warmup: int, cuda: bool) -> list:
    times = []
    for i in range(warmup + iters):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return p50_p95(times)


def ros_available() -> tuple:
    try:
        import rclpy  # noqa: F401
        from pare_ros.msg import SmplBody  # noqa: F401
        from sensor_msgs.msg import Image  # noqa: F401
    except ImportError as exc:
        return False, f"FrameProcessor needs rclpy and the built pare_ros messages ({exc})"
    return True, ""


# ------------------------------------------------------------------------------------------
class TinyNetwork(torch.nn.Module):
    """Dry-run stand-in for PARE: an ``nn.Module`` (one parameter, so device/autocast plumbing
    runs) returning :class:`~pare_ros.benchmarking.null_network.NullNetwork`'s fixed outputs."""

    def __init__(self) -> None:
        from pare_ros.benchmarking.null_network import NullNetwork

        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.null = NullNetwork(max(BATCHES))

    def forward(self, images: torch.Tensor) -> dict:
        return {k: v.to(images.device) * self.scale for k, v in self.null(images).items()}


def network_for(args):
    """The real (untrained) PARE network, or the tiny stand-in in a dry run."""
    from pare_ros.assets import untrained_network

    return TinyNetwork() if args.dry_run else untrained_network()


def section_tests(args) -> dict:
    files = ["test/test_backends.py", "test/test_fast_paths.py"]
    command = [sys.executable, "-m", "pytest", *files, "-k", "cuda", "-q", "-p", "no:cacheprovider"]
    if args.dry_run:
        command.append("--collect-only")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "test"), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    tail = (run.stdout + run.stderr).strip().splitlines()[-3:]
    if run.returncode not in (0, 5):                 # 5: nothing collected/selected
        raise RuntimeError("pytest failed: " + " | ".join(tail))
    return {"command": " ".join(command[1:]), "summary": tail[-1] if tail else ""}


def section_network(args) -> dict:
    from pare_ros.backends.torch_backend import TorchBackend

    cuda = args.device == "cuda"
    model = network_for(args)
    configs = {"fp32 eager": {}, "fp16 autocast eager": {"precision": "fp16"},
               "fp16 channels-last CUDA graphs": {"precision": "fp16", "channels_last": True, "cuda_graphs": True},
               "fp32 CUDA graphs": {"cuda_graphs": True}}
    batches = BATCHES if not args.dry_run else (1,)
    out = {}
    for name, options in configs.items():
        if options and not cuda:
            out[name] = "skipped: needs CUDA"
            continue
        backend = TorchBackend(model, args.device, batch_buckets=BATCHES, **options)
        out[name] = {}
        for batch in batches:
            x = torch.randn(batch, 3, 224, 224, device=args.device)
            out[name][batch] = timed(lambda: backend(x), args.iters, args.warmup, cuda)
            print(f"    network {name:32s} batch {batch}: {out[name][batch]} ms", flush=True)
    return out


def section_crops(args) -> dict:
    from benchmark import boxes_for
    from pare_ros.backends.gpu_preprocess import crop_batch
    from pare_ros.preprocessing import box_to_crop, crop_image, crops_to_input

    cuda = args.device == "cuda"
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rgb = np.ascontiguousarray(np.repeat(np.repeat(rgb[::8, ::8], 8, 0), 8, 1))   # some structure
    out = {}
    for people in people_counts(args):
        crops = [box_to_crop(b) for b in boxes_for(people)]
        reference = np.stack([crop_image(rgb, c) for c in crops]).astype(np.float32).transpose(0, 3, 1, 2)
        image = torch.from_numpy(rgb).to(args.device)
        ours = crop_batch(image, crops, normalise=False).cpu().numpy()
        diff = np.abs(ours - reference)
        out[people] = {
            "max_grey_levels": float(diff.max()), "mean_grey_levels": float(diff.mean()),
            f"{args.device}_batched_ms": timed(lambda: crop_batch(torch.from_numpy(rgb).to(args.device), crops),
                                               args.iters, args.warmup, cuda),
            "opencv_cpu_ms": timed(lambda: crops_to_input(rgb, crops), args.iters, args.warmup, False),
        }
        if diff.max() > 1.0:
            raise RuntimeError(f"GPU crops differ from OpenCV by {diff.max()} grey levels (> 1)")
        print(f"    crops {people} people: {out[people]}", flush=True)
    return out


def section_smpl(args) -> dict:
    from pare_ros.assets import synthetic_smpl_dir
    from pare_ros.body_model import BodyModel
    from pare_ros.geometry import axis_angle_to_rotmat

    cuda = args.device == "cuda"
    cpu_model = BodyModel.from_dir(synthetic_smpl_dir("neutral"))
    model = BodyModel.from_dir(synthetic_smpl_dir("neutral")).to(args.device)
    out = {}
    g = torch.Generator().manual_seed(0)
    for people in people_counts(args):
        rot = axis_angle_to_rotmat(torch.randn(people * 24, 3, generator=g) * 0.5).reshape(people, 24, 3, 3)
        betas = torch.randn(people, 10, generator=g)
        r, b = rot.to(args.device), betas.to(args.device)
        with torch.inference_mode():
            ref = cpu_model(rot, betas)
            full, fast = model(r, b), model(r, b, vertices=False)
            errors = {"full_vertices_vs_cpu_m": float((full.vertices.cpu() - ref.vertices).abs().max()),
                      "joints_only_joints49_vs_cpu_full_m": float((fast.joints49.cpu() - ref.joints49).abs().max())}
            out[people] = {
                "full_ms": timed(lambda: model(r, b), args.iters, args.warmup, cuda),
                "joints_only_ms": timed(lambda: model(r, b, vertices=False), args.iters, args.warmup, cuda),
                **errors}
        if max(errors.values()) > 1e-5:
            raise RuntimeError(f"SMPL on {args.device} differs from CPU: {errors}")
        print(f"    smpl {people} people: {out[people]}", flush=True)
    return out


def section_pipeline(args) -> dict:
    from benchmark import UnbatchedEstimator
    from pare_ros.assets import synthetic_smpl_dir
    from pare_ros.backends.select import select_backend
    from pare_ros.backends.torch_backend import TorchBackend
    from pare_ros.body_model import BodyModel
    from pare_ros.estimator import BodyEstimator
    from pare_ros.host_threads import limit_host_threads

    device = args.device
    # The node's host threads (its host_threads parameter, default 1): with torch's default pool
    # (one thread per core) the host side of the frame measured 1.5-3.5× slower on few cores.
    threads = limit_host_threads(1, torch_runs_network_on_cpu=device != "cuda")
    model = network_for(args)
    body_model = BodyModel.from_dir(synthetic_smpl_dir("neutral")).to(device)
    if device == "cuda":
        backend, reason = select_backend("torch-cuda", model=model, max_batch=max(PEOPLE))
        eager = TorchBackend(network_for(args), "cuda")                # the reference demo: fp32 eager
    else:
        backend, reason = select_backend("torch-cpu", model=model, max_batch=max(PEOPLE))
        eager = backend
    batched = BodyEstimator(backend, body_model, device=device)
    reference = UnbatchedEstimator(BodyEstimator(eager, body_model, device=device, crop_on_device=False))
    with_ros, why = ros_available()
    out = {"backend": reason, "frames": args.frames, "host_threads": threads.describe(),
           "path": "FrameProcessor (decode → messages serialised)" if with_ros
           else f"ROS-free part (estimator + tracker); {why}"}
    for people in people_counts(args):
        loops = {"batched": _frame_loop(batched, people, with_ros, device),
                 "reference": _frame_loop(reference, people, with_ros, device)}
        samples = {label: [] for label in loops}
        for i in range(args.warmup + args.frames):
            for label, step in loops.items():
                seconds = step(i)
                if i >= args.warmup:
                    samples[label].append(seconds)
        case = {label: p50_p95(v) for label, v in samples.items()}
        case["reference_over_batched"] = round(case["reference"][0] / case["batched"][0], 3)
        out[people] = case
        print(f"    pipeline {people} people: {case}", flush=True)
    return out


def _frame_loop(estimator, people: int, with_ros: bool, device: str):
    """step(i) → seconds of frame i through ``estimator`` (+ the node's FrameProcessor)."""
    from benchmark import boxes_for
    from pare_ros.tracking import Tracker

    boxes = boxes_for(people)
    pixels = np.random.default_rng(people).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    if with_ros:
        import benchmark_pipeline as bp
        from benchmark import image_message

        processor = bp.make_processor(estimator, boxes)

        def step(i):
            image, info, stamp = image_message(pixels, i)
            out, seconds = bp.run_frame(processor, image, info, stamp, False, False, device)
            if out.people != people:
                raise RuntimeError(f"{out.people} people published, expected {people}")
            return seconds
        return step
    tracker = Tracker(min_hits=1, seed=0)

    def step(i):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        tracker.update(boxes, np.ones(len(boxes)), 1.0 + i / 30.0, image_size=(640, 480))
        result = estimator.estimate(pixels, boxes)
        seconds = time.perf_counter() - t
        if len(result.bodies) != people:
            raise RuntimeError(f"{len(result.bodies)} bodies, expected {people}")
        return seconds
    return step


def section_precision(args) -> dict:
    import precision_accuracy as pa
    from pare_ros.assets import synthetic_smpl_dir, untrained_network
    from pare_ros.body_model import BodyModel
    from pare_ros.network.checkpoint import load_network

    device = args.device
    body_model = BodyModel.from_dir(synthetic_smpl_dir("neutral")).to(device)
    if args.dry_run:
        # Plumbing only (CPU float16 autocast takes ~30 s per crop): fp32 against itself.
        model = network_for(args).to(device)
        networks = {False: pa.AutocastNetwork(model, False), True: pa.AutocastNetwork(model, False)}
        result = pa.fixture_case(networks, body_model, torch.randn(1, 3, 224, 224), device)
        if result["root_relative_mm"]["max"] > 1e-3:
            raise RuntimeError(f"fp32 against itself differs: {result}")
        return {"dry_run_fp32_vs_fp32": result}
    if pa.FIXTURE.is_file():
        model, weights = load_network(pa.FIXTURE, device=device), f"fixture {pa.FIXTURE.name}"
    else:
        model, weights = untrained_network().to(device), "seeded untrained weights (fixture not on this machine)"
    networks = {half: pa.AutocastNetwork(model, half) for half in (False, True)}
    out = {"weights": weights, "cases": {}}
    inputs = _fixture_inputs(pa)
    if inputs is not None:
        out["cases"]["fixture inputs"] = pa.fixture_case(networks, body_model, inputs, device)
    for name, image, boxes in pa.real_photo_boxes(4):
        out["cases"][name] = pa.real_case(networks, body_model, image, boxes, device)
    for name, case in out["cases"].items():
        print(f"    precision {name}: root-relative {case['root_relative_mm']} mm, "
              f"rotation {case['rotation_deg']} deg", flush=True)
    return out


def _fixture_inputs(pa):
    """The parity fixture's two normalised inputs: from the fixture, or from the small file
    ``gpu_check.sh --prepare`` writes for machines the 85 MB fixture cannot travel to."""
    if pa.FIXTURE.is_file():
        return torch.load(pa.FIXTURE, map_location="cpu", weights_only=True)["input"]
    carried = REPO / ".gpu_carry" / "fixture_inputs.pt"
    return torch.load(carried, weights_only=True) if carried.is_file() else None


def section_memory(args) -> dict:
    if args.device != "cuda":
        raise Skip("needs CUDA")
    free, total = torch.cuda.mem_get_info()
    return {"peak_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            "peak_reserved_mb": round(torch.cuda.max_memory_reserved() / 2**20, 1),
            "device_in_use_mb": round((total - free) / 2**20, 1)}


SECTIONS = {"tests": section_tests, "network": section_network, "crops": section_crops, "smpl": section_smpl,
            "pipeline": section_pipeline, "precision": section_precision, "memory": section_memory}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny counts: check that everything runs")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--frames", type=int, default=100, help="pipeline frames per case (≥ 100 on a GPU)")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", REPO / "out" / "gpu_check")))
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not args.dry_run and not cuda:
        print("error: no CUDA device (use --dry-run on a CPU-only machine)", file=sys.stderr)
        return 2
    args.device = "cuda" if cuda and not args.dry_run else "cpu"
    if args.dry_run:
        args.frames, args.iters, args.warmup = 2, 1, 1
    torch.backends.cuda.matmul.allow_tf32 = False
    report = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, "
                         f"CUDA: {torch.cuda.get_device_name() if cuda else 'none'}",
              "dry_run": args.dry_run, "device": args.device, "sections": {}}
    print(f"gpu_check: {report['machine']}; device {args.device}" + (" (DRY RUN)" if args.dry_run else ""), flush=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    failed = []
    for name in args.sections:
        t = time.perf_counter()
        try:
            result = {"status": "ok", **SECTIONS[name](args)}
        except Skip as exc:
            result = {"status": f"skipped: {exc}"}
        except Exception as exc:  # noqa: BLE001 — every section reports, the run goes on
            result = {"status": f"FAILED: {type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            failed.append(name)
        result["seconds"] = round(time.perf_counter() - t, 1)
        report["sections"][name] = result
        print(f"[{name}] {result['status']} ({result['seconds']} s)", flush=True)
        if name in failed:
            print(result["traceback"], file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"report: {args.out / 'gpu_check.json'}; " + (f"FAILED: {failed}" if failed else "all sections ok or skipped"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
