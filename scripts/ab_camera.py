"""Interleaved in-process A/B of :func:`pare_ros.camera.crop_to_camera`: the module at a git
revision (default 2f6e58a, loaded as its own module) against the working tree's, on the
estimator's own arguments (captured from the benchmark pipeline's frames for 1, 4 and 8 people:
float64 host tensors, 24 keypoints), alternating calls; median µs per call.

Usage::

    OPENBLAS_NUM_THREADS=1 python scripts/ab_camera.py [--rev 2f6e58a] [--repeats 3000]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def load_camera(rev: str):
    """pare_ros/camera.py at ``rev`` as the module ``camera_<rev>``."""
    import importlib.util

    text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:pare_ros/camera.py"], check=True,
                          capture_output=True, text=True).stdout
    name = f"camera_{rev}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    sys.modules[name] = module                       # dataclasses look their module up
    exec(compile(text, f"{name}.py", "exec"), module.__dict__)
    return module


def captured_arguments(people: int):
    """The arguments of the estimator's crop_to_camera call in a pipeline frame (NullNetwork)."""
    import pare_ros.estimator as estimator_module
    from benchmark import boxes_for, image_message
    from benchmark_pipeline import make_estimator, make_processor

    calls = []
    original = estimator_module.crop_to_camera

    def capture(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    estimator_module.crop_to_camera = capture
    try:
        processor = make_processor(make_estimator(), boxes_for(people))
        pixels = np.random.default_rng(people).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        for i in range(3):
            image, info, stamp = image_message(pixels, i)
            processor.process(image, info, want_markers=False, want_points=False, now=stamp)
    finally:
        estimator_module.crop_to_camera = original
    return calls[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="2f6e58a")
    parser.add_argument("--repeats", type=int, default=3000)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from pare_ros import camera as new

    old = load_camera(args.rev)
    for people in args.people:
        call_args, kwargs = captured_arguments(people)
        intrinsics = call_args[4]
        old_args = (*call_args[:4], old.Intrinsics(*intrinsics.as_tuple()), *call_args[5:])
        a, b = new.crop_to_camera(*call_args, **kwargs), old.crop_to_camera(*old_args, **kwargs)
        diff = max(float((x - y).abs().max()) for x, y in
                   zip((a.ray_rotation, a.global_orient, a.transl), (b.ray_rotation, b.global_orient, b.transl)))
        times = {"old": [], "new": []}
        for _ in range(args.repeats):
            for label, fn, fargs in (("old", old.crop_to_camera, old_args), ("new", new.crop_to_camera, call_args)):
                t = time.perf_counter()
                fn(*fargs, **kwargs)
                times[label].append(time.perf_counter() - t)
        o, n = (1e6 * float(np.median(times[k])) for k in ("old", "new"))
        print(f"N={people}: old {o:7.1f} us  new {n:7.1f} us  ratio {n / o:.2f}  max|diff| {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
