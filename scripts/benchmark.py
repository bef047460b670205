"""Per-stage and end-to-end latency of the node's frame pipeline for each inference backend.

For 1, 4 and 8 people it feeds 640×480 ``sensor_msgs/Image`` frames (30 Hz stamps) through the
node's :class:`~pare_ros.ros.frame_processor.FrameProcessor` — decode, detect (fixed boxes),
track, crop, network, SMPL, post-processing, smoothing (SMPL re-run), message build (SmplBodyArray,
TF, markers with the mesh at the default 10 Hz) and serialise (CDR bytes of everything the node
publishes) — and reports p50/p95 per stage and end to end over ``--frames`` frames after
``--warmup``, and the same frames through the reference-style unbatched loop (one OpenCV crop,
one network forward and one SMPL call per person; everything else identical), the two loops
alternating frame by frame so that machine noise hits both alike; then the unbatched/batched
per-person ratio.

Each backend runs in its own process, so the peak RSS (and, on CUDA, the peak GPU memory) it
reports is that backend's alone. Weights are untrained and the body model synthetic: timing
does not depend on the values. Needs the ROS 2 environment (``source scripts/env.sh``).

Usage::

    python scripts/benchmark.py                       # 100 frames per case (slow on CPU)
    python scripts/benchmark.py --frames 5 --warmup 1 --backends onnxruntime torch-cpu
    python scripts/benchmark.py --json out/benchmark.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pare_ros.estimator import BodyEstimator, Estimates  # noqa: E402

STAGES = ("decode", "detect", "track", "crop", "network", "smpl", "postprocess", "smooth",
          "messages", "serialise")
SUMMARY = ("end_to_end", "outside_network", "per_person")
CUDA_BACKENDS = ("tensorrt", "torch-cuda")


def boxes_for(people: int, width: int = 640, height: int = 480) -> np.ndarray:
    """``people`` standing-person boxes spread over the image (overlapping when many)."""
    xs = np.linspace(20, width - 140, people)
    return np.array([[x, 60 + 10 * (i % 3), x + 120, 440 - 10 * (i % 2)] for i, x in enumerate(xs)])


def percentiles(seconds) -> list:
    arr = np.asarray(seconds) * 1000.0
    return [float(np.percentile(arr, 50)), float(np.percentile(arr, 95))]


class CountingBackend:
    """Counts network forward calls (the unbatched baseline must make one per person)."""

    def __init__(self, backend) -> None:
        self.backend, self.calls = backend, 0

    def __call__(self, batch):
        self.calls += 1
        return self.backend(batch)


class UnbatchedEstimator:
    """The reference demo's loop: per person one OpenCV crop on the CPU, one network forward
    and one SMPL call; same interface and outputs as :class:`BodyEstimator`."""

    def __init__(self, estimator: BodyEstimator) -> None:
        self.inner = BodyEstimator(estimator.backend, estimator.body_model, estimator.box_scale,
                                   estimator.device, crop_on_device=False,
                                   sync_stages=estimator.sync_stages)
        self.body_model = estimator.body_model

    def estimate(self, image, boxes, intrinsics=None, color_order="rgb", scores=None) -> Estimates:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores)
        bodies, timings = [], {}
        for box, score in zip(boxes, scores):
            one = self.inner.estimate(image, box[None], intrinsics, color_order, [score])
            bodies += one.bodies
            for stage, seconds in one.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        height, width = image.shape[:2]
        return Estimates(bodies, intrinsics, (width, height), timings)


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark (VmHWM: reset at exec, unlike getrusage's
    ru_maxrss, which a child started by fork + exec inherits from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0                  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def image_message(pixels: np.ndarray, index: int):
    from sensor_msgs.msg import CameraInfo, Image

    height, width = pixels.shape[:2]
    stamp_ns = 1_000_000_000 + index * 33_333_333          # 30 Hz camera
    image = Image(width=width, height=height, encoding="rgb8", step=3 * width, data=pixels.tobytes())
    info = CameraInfo(width=width, height=height, k=[520.0, 0, width / 2, 0, 520.0, height / 2, 0, 0, 1.0])
    for msg in (image, info):
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = "bench_optical"
    return image, info, stamp_ns * 1e-9


def run_frame(processor, image, info, stamp, device: str):
    """One frame through ``processor`` and serialisation; (outputs with timings, end-to-end s)."""
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = processor.process(image, info, want_markers=True, now=stamp)
    t = time.perf_counter()
    # What the node publishes: SmplBodyArray, TF and markers as CDR bytes.
    payload = [out.bodies.serialize(), out.transforms.serialize(), out.markers.serialize()]
    out.timings["serialise"] = time.perf_counter() - t
    if device == "cuda":
        torch.cuda.synchronize()
    if not all(payload):
        raise RuntimeError("empty message")
    return out, time.perf_counter() - t0


def run_cases(loops, backend: CountingBackend, people: int, frames: int, warmup: int, device: str):
    """The same frames through each of ``loops`` (label → processor), interleaved frame by frame
    so that a slow spell of the machine hits all loops alike. Returns label → p50/p95 per stage
    and summary, plus forward calls per frame."""
    pixels = np.random.default_rng(people).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    samples = {label: {name: [] for name in STAGES + SUMMARY} for label in loops}
    calls = {label: [] for label in loops}
    for i in range(warmup + frames):
        image, info, stamp = image_message(pixels, i)
        for label, processor in loops.items():
            backend.calls = 0
            out, end_to_end = run_frame(processor, image, info, stamp, device)
            if out.people != people:
                raise RuntimeError(f"{label} frame {i}: {out.people} people published, expected {people}")
            if i < warmup:
                continue
            for stage in STAGES:
                samples[label][stage].append(out.timings.get(stage, 0.0))
            samples[label]["end_to_end"].append(end_to_end)
            samples[label]["outside_network"].append(end_to_end - out.timings["network"])
            samples[label]["per_person"].append(end_to_end / people)
            calls[label].append(backend.calls)
    return {label: {**{name: percentiles(v) for name, v in samples[label].items()},
                    "forward_calls_per_frame": float(np.mean(calls[label]))} for label in loops}


def make_processor(estimator, boxes):
    """The node's pipeline with its default settings and a fixed-box detector."""
    from pare_ros.ros.frame_processor import FrameProcessor, ProcessorSettings
    from pare_ros.ros.pipeline_factory import FixedBoxesDetector
    from pare_ros.tracking import BodySmoother, Tracker

    detector = FixedBoxesDetector(boxes, min_box_height=0.0, max_people=len(boxes))
    return FrameProcessor(estimator, detector, Tracker(min_hits=1, seed=0), ProcessorSettings(),
                          smoother=BodySmoother())


def child(args) -> dict:
    """Benchmark one backend in this process; the result as a dict."""
    from pare_ros.assets import synthetic_smpl_dir, untrained_network
    from pare_ros.backends.select import select_backend
    from pare_ros.body_model import BodyModel

    name = args.child
    device = "cuda" if name in CUDA_BACKENDS else "cpu"
    backend, reason = select_backend(name, model=untrained_network(), onnx_path=args.onnx,
                                     precision=args.precision if device == "cuda" else "fp32",
                                     max_batch=max(args.people), engine_policy="auto")
    counting = CountingBackend(backend)
    body_model = BodyModel.from_dir(synthetic_smpl_dir("neutral")).to(device)
    # sync_stages: on CUDA each stage's own GPU time (the node waits once per frame instead).
    batched = BodyEstimator(counting, body_model, device=device, sync_stages=True)
    result = {"backend": name, "reason": reason, "device": device, "cases": []}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for people in args.people:
        boxes = boxes_for(people)
        loops = {"batched": make_processor(batched, boxes)}
        if not args.no_baseline:
            loops["unbatched"] = make_processor(UnbatchedEstimator(batched), boxes)
        for label, stats in run_cases(loops, counting, people, args.frames, args.warmup, device).items():
            result["cases"].append({"people": people, "loop": label, **stats})
            print(f"  {name} {label} {people} people: end to end "
                  f"{stats['end_to_end'][0]:.1f} / {stats['end_to_end'][1]:.1f} ms", flush=True)
    result["peak_rss_mb"] = peak_rss_mb()
    if device == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        free, total = torch.cuda.mem_get_info()
        result["gpu_used_mb"] = (total - free) / 2**20   # includes TensorRT's own allocations
    return result


def available(names) -> list:
    from pare_ros.backends import select

    keep = []
    for name in names:
        if name in CUDA_BACKENDS and not select.cuda_available():
            print(f"- {name}: not run (no CUDA device)")
        elif name == "tensorrt" and not select.tensorrt_available()[0]:
            print(f"- {name}: not run ({select.tensorrt_available()[1]})")
        elif name == "onnxruntime" and not select.onnxruntime_available()[0]:
            print(f"- {name}: not run ({select.onnxruntime_available()[1]})")
        else:
            keep.append(name)
    return keep


def table(results) -> str:
    head = ["backend", "people", *STAGES, "**end to end**", "outside network", "unbatched end to end",
            "unbatched / batched per person"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        cases = {(c["people"], c["loop"]): c for c in result["cases"]}
        for (people, loop), case in cases.items():
            if loop != "batched":
                continue
            base = cases.get((people, "unbatched"))
            cells = [f"{case[s][0]:.1f} / {case[s][1]:.1f}" for s in STAGES]
            cells.append(f"**{case['end_to_end'][0]:.0f} / {case['end_to_end'][1]:.0f}**")
            cells.append(f"{case['outside_network'][0]:.1f} ({100 * case['outside_network'][0] / case['end_to_end'][0]:.1f} %)")
            cells.append(f"{base['end_to_end'][0]:.0f} / {base['end_to_end'][1]:.0f}" if base else "–")
            cells.append(f"{base['per_person'][0] / case['per_person'][0]:.3f}×" if base else "–")
            lines.append(f"| {result['backend']} | {people} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--backends", nargs="+", default=["tensorrt", "torch-cuda", "onnxruntime", "torch-cpu"])
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16", help="on CUDA backends")
    parser.add_argument("--onnx", type=Path, default=None,
                        help="exported model (default: export the untrained network to a temp file)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unbatched baseline")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup < 1:
        parser.error("--warmup must be ≥ 1 (the first frame pays for lazy initialisation)")
    try:
        import rclpy  # noqa: F401
        from sensor_msgs.msg import Image  # noqa: F401
    except ImportError as exc:
        print(f"error: the benchmark needs the ROS 2 environment (source scripts/env.sh): {exc}",
              file=sys.stderr)
        return 2
    if args.child:
        args.result_file.write_text(json.dumps(child(args)))
        return 0

    backends = available(args.backends)
    work = Path(tempfile.mkdtemp(prefix="pare_bench_"))
    if args.onnx is None and any(b in backends for b in ("onnxruntime", "tensorrt")):
        from pare_ros.assets import untrained_network
        from pare_ros.backends.onnx_export import export_onnx

        args.onnx = work / "pare_untrained.onnx"
        export_onnx(untrained_network(), args.onnx, {"checkpoint": "UNTRAINED (benchmark)"})
    machine = (f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, torch {torch.__version__} "
               f"({torch.get_num_threads()} threads), CUDA: "
               f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    print(f"machine: {machine}\n{args.frames} frames after {args.warmup} warm-up; people {args.people}; "
          f"times in ms, p50 / p95")
    results = []
    for name in backends:
        out = work / f"{name}.json"
        command = [sys.executable, __file__, "--child", name, "--result-file", str(out),
                   "--frames", str(args.frames), "--warmup", str(args.warmup), "--precision", args.precision,
                   "--people", *map(str, args.people)] + (["--onnx", str(args.onnx)] if args.onnx else []) \
            + (["--no-baseline"] if args.no_baseline else [])
        if subprocess.run(command).returncode != 0:
            print(f"- {name}: failed (see above)")
            continue
        result = json.loads(out.read_text())
        results.append(result)
        memory = f"peak RSS {result['peak_rss_mb']:.0f} MB"
        if "peak_gpu_mb" in result:
            memory += f", peak GPU (torch) {result['peak_gpu_mb']:.0f} MB, GPU in use {result['gpu_used_mb']:.0f} MB"
        print(f"- {name}: {result['reason']}; {memory}", flush=True)
    print("\n" + table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "frames": args.frames, "warmup": args.warmup,
                                         "results": results}, indent=2))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
