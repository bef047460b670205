"""Interleaved A/B of the node's message stage: the working tree against an older commit.

Runs a :class:`FrameProcessor` (the zero-cost network of benchmark_pipeline.py, tracking and
smoothing on) for a few frames per case, captures the arguments it gave the message builders
in its last frame, then times the builders of both versions on those same inputs, alternating
A and B every repeat (this VM's speed drifts minute to minute). Pieces, in the node's order:
``tf`` (bodies_transforms), ``columns`` (body_roots + body_columns), ``array`` (the
SmplBodyArrayBundle), ``planner`` (planner_frame), ``ser_bodies`` / ``ser_tf`` (serialize()).
Checks first that both versions give the same bytes and planner outputs. Needs the ROS 2
environment (``source scripts/env.sh``) and git history.

Usage::

    OPENBLAS_NUM_THREADS=1 python scripts/ab_messages.py --base 2f6e58a --repeats 3000
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "scripts", REPO / "test"):
    sys.path.insert(0, str(extra))

from benchmark import boxes_for, image_message  # noqa: E402
from benchmark_pipeline import make_estimator, make_processor  # noqa: E402
import git_modules  # noqa: E402

PIECES = ("tf", "columns", "array", "planner", "ser_bodies", "ser_tf")


def capture(estimator, people: int, frames: int = 12) -> dict:
    """The message builders' arguments in the last of ``frames`` frames with ``people`` people."""
    from pare_ros.ros import frame_processor as fp

    seen = {}

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            seen[name] = (args, kwargs)
            return fn(*args, **kwargs)
        return wrapped

    originals = {name: getattr(fp, name) for name in ("bodies_transforms", "body_columns", "planner_frame",
                                                      "SmplBodyArrayBundle")}
    for name, fn in originals.items():
        setattr(fp, name, spy(name, fn))
    try:
        processor = make_processor(estimator, boxes_for(people))
        pixels = np.random.default_rng(people).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        for i in range(frames):
            image, info, stamp = image_message(pixels, i)
            out = processor.process(image, info, want_markers=False, want_points=False, now=stamp)
            assert out.people == people
    finally:
        for name, fn in originals.items():
            setattr(fp, name, fn)
    return seen


def frame(m, seen: dict) -> tuple:
    """The message stage of one frame with the modules ``m``: (per-piece seconds, outputs)."""
    tf_args, tf_kw = seen["bodies_transforms"]
    col_args, col_kw = seen["body_columns"]
    arr_args, _ = seen["SmplBodyArrayBundle"]
    pl_args, pl_kw = seen["planner_frame"]
    clock = time.perf_counter
    t0 = clock()
    transforms = m.tf_frames.bodies_transforms(*tf_args, **tf_kw)
    t1 = clock()
    columns = m.body_messages.body_columns(*col_args, **{**col_kw, "roots": m.tf_frames.body_roots(
        transforms, len(col_args[0]))})
    t2 = clock()
    array = m.body_array.SmplBodyArrayBundle(arr_args[0], columns, *arr_args[2:])
    t3 = clock()
    planner = m.world_frame.planner_frame(*pl_args, **pl_kw)
    t4 = clock()
    bodies = array.serialize()
    t5 = clock()
    tf = transforms.serialize()
    t6 = clock()
    return (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), (bodies, tf, planner)


def same_planner(a, b) -> bool:
    if (a.stamp, a.frame_id, a.camera_frame, a.image_size, a.fallback) != (
            b.stamp, b.frame_id, b.camera_frame, b.image_size, b.fallback) or len(a.tracks) != len(b.tracks):
        return False
    for x, y in zip(a.tracks, b.tracks):
        for name in vars(x):
            u, v = getattr(x, name), getattr(y, name)
            if (u is None) != (v is None) or (u is not None and not np.array_equal(u, v)):
                return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="2f6e58a", help="commit of the A side (B = the working tree)")
    parser.add_argument("--people", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3000)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import pare_ros.ros.body_array as body_array
    import pare_ros.ros.body_messages as body_messages
    import pare_ros.ros.tf_frames as tf_frames
    import pare_ros.world_frame as world_frame
    new = type("New", (), dict(tf_frames=tf_frames, body_messages=body_messages, body_array=body_array,
                               world_frame=world_frame))
    old = git_modules.load(args.base)
    estimator = make_estimator("cpu", max(args.people))
    print(f"A = {args.base}, B = working tree; median µs over {args.repeats} interleaved repeats; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'people':>6} {'side':>4} " + " ".join(f"{p:>10}" for p in PIECES) + f" {'total':>8}")
    for people in args.people:
        seen = capture(estimator, people)
        outputs = [frame(m, seen)[1] for m in (old, new)]
        if outputs[0][:2] != outputs[1][:2] or not same_planner(outputs[0][2], outputs[1][2]):
            print(f"{people} people: OUTPUTS DIFFER", file=sys.stderr)
            return 1
        times = {0: [], 1: []}
        for r in range(args.repeats):
            for side in ((0, 1) if r % 2 else (1, 0)):
                times[side].append(frame((old, new)[side], seen)[0])
        medians = {side: np.median(np.array(t), axis=0) * 1e6 for side, t in times.items()}
        totals = {side: np.median(np.array(t).sum(axis=1)) * 1e6 for side, t in times.items()}
        for side, name in ((0, "A"), (1, "B")):
            print(f"{people:>6} {name:>4} " + " ".join(f"{v:10.1f}" for v in medians[side])
                  + f" {totals[side]:8.1f}")
        print(f"{people:>6} {'B/A':>4} " + " ".join(f"{b / a:10.2f}" for a, b in zip(medians[0], medians[1]))
              + f" {totals[1] / totals[0]:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
