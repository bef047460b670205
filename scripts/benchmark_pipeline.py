"""The frame pipeline's own cost: the node's ``FrameProcessor`` around a zero-cost network.

The network is :class:`pare_ros.benchmarking.null_network.NullNetwork` (fixed, plausible outputs
of the right shapes, no inference), so what is measured is everything else the node does per
frame — decode, detect (fixed boxes), track, crop, SMPL, post-processing, smoothing, message
build and serialisation to CDR bytes — i.e. what decides whether the node keeps up with a 30 Hz
camera once the network runs on a GPU in a few milliseconds.

Cases: 1, 4 and 8 people (fixed boxes, tracking + smoothing on, the node's default settings) ×
subscribers: ``none`` (only ``~/bodies`` and TF: no marker or body-point subscriber),
``markers+points`` (markers with the mesh at the default 10 Hz, and ``~/body_points``) and
``mesh-every-frame`` (the same with the mesh in every frame: the worst frame of the previous
case). Frames are ``sensor_msgs/Image`` messages with 30 Hz stamps, 640×480 ``rgb8`` unless
``--image-size`` / ``--encoding`` say otherwise (the boxes scale with the image height; ``jpeg``
is a ``CompressedImage`` of a smooth picture at OpenCV's default quality). Reports
p50 / p95 per stage and end to end (decode → every message serialised), and the frame's CPU
time (``cpu_time``: this thread's, steadier than wall time on a shared machine; use
``--threads 1`` so that all the work is on this thread). Threads are the node's by default
(``--host-threads 1``, its ``host_threads`` parameter: torch's pool and the BLAS get one thread,
OpenCV keeps its own; :mod:`pare_ros.host_threads`); ``--host-threads 0`` is the libraries'
defaults; ``--threads N`` gives N to OpenCV as well. Needs the ROS 2
environment (``source scripts/env.sh``).

Usage::

    python scripts/benchmark_pipeline.py                    # 200 frames per case
    python scripts/benchmark_pipeline.py --frames 20 --people 1 8 --json out/pipeline.json
    python scripts/benchmark_pipeline.py --device cuda      # on a GPU machine
    python scripts/benchmark_pipeline.py --image-size 1280x720 --encoding yuv422_yuy2   # usb_cam's yuyv
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# NumPy's BLAS (OpenBLAS, which the SMPL mesh uses on the CPU) fixes its thread count when it
# loads: with --threads N it gets N as well, so that --threads 1 keeps all the frame's work on
# this thread and cpu_time counts all of it.
for _i, _arg in enumerate(sys.argv[:-1]):
    if _arg == "--threads":
        os.environ.setdefault("OPENBLAS_NUM_THREADS", sys.argv[_i + 1])

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchmark import boxes_for, image_message, percentiles  # noqa: E402

ORDER = ("decode", "detect", "track", "crop", "network", "smpl", "postprocess", "smooth", "messages",
         "serialise", "cpu_time")
SUBSCRIBERS = {
    # name: (want_markers, want_points, markers_max_rate or None for the default)
    "none": (False, False, None),
    "markers+points": (True, True, None),
    "mesh-every-frame": (True, True, 1e6),
}


def make_estimator(device: str = "cpu", max_batch: int = 8):
    from pare_ros.assets import synthetic_smpl_dir
    from pare_ros.benchmarking.null_network import NullNetwork
    from pare_ros.body_model import BodyModel
    from pare_ros.estimator import BodyEstimator

    body_model = BodyModel.from_dir(synthetic_smpl_dir("neutral")).to(device)
    return BodyEstimator(NullNetwork(max_batch, device), body_model, device=device)


def make_processor(estimator, boxes, markers_max_rate=None, body_points_stride: int = 1):
    from pare_ros.ros.frame_processor import FrameProcessor, ProcessorSettings
    from pare_ros.ros.pipeline_factory import FixedBoxesDetector
    from pare_ros.tracking import BodySmoother, Tracker

    settings = ProcessorSettings()
    if markers_max_rate is not None:
        settings.markers_max_rate = markers_max_rate
    settings.body_points_stride = body_points_stride
    detector = FixedBoxesDetector(boxes, min_box_height=0.0, max_people=len(boxes))
    return FrameProcessor(estimator, detector, Tracker(min_hits=1, seed=0), settings, smoother=BodySmoother())


#: What ``--encoding`` sends: the ROS encodings of the usual camera drivers (usb_cam's ``yuyv``
#: is ``yuv422_yuy2``; Bayer from machine-vision cameras) and a JPEG ``CompressedImage``.
ENCODINGS = ("rgb8", "bgr8", "yuv422_yuy2", "bayer_rggb8", "mono8", "jpeg")


def image_size(text: str):
    """"WxH" → (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1280x720, got {text!r}") from None
    if width < 64 or height < 64 or width % 2:
        raise argparse.ArgumentTypeError(f"image size {text!r}: at least 64×64, even width (4:2:2)")
    return width, height


def scene_boxes(people: int, width: int, height: int) -> np.ndarray:
    """:func:`benchmark.boxes_for`'s 640×480 layout scaled to the image height and spread over
    its width: people as tall relative to the frame at every resolution."""
    scale = height / 480.0
    return boxes_for(people, int(round(width / scale)), 480) * scale


def frame_payload(width: int, height: int, encoding: str, seed: int):
    """Pixels of one frame as the message carries them: (encoding, bytes) for an Image,
    ("jpeg", bytes) for a CompressedImage. Raw layouts carry noise (their decoding does not
    depend on content); the JPEG a smooth picture (noise would be a worst case no camera sends)."""
    import cv2

    rng = np.random.default_rng(seed)
    if encoding == "jpeg":
        small = rng.integers(0, 256, (max(height // 16, 1), max(width // 16, 1), 3), dtype=np.uint8)
        picture = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        ok, data = cv2.imencode(".jpg", picture)
        if not ok:
            raise RuntimeError("cv2.imencode failed")
        return encoding, data.tobytes()
    bytes_per_pixel = {"rgb8": 3, "bgr8": 3, "yuv422_yuy2": 2, "bayer_rggb8": 1, "mono8": 1}[encoding]
    return encoding, rng.integers(0, 256, height * width * bytes_per_pixel, dtype=np.uint8).tobytes()


def frame_message(payload, width: int, height: int, index: int):
    """(image or compressed image, CameraInfo, stamp s) of frame ``index`` (30 Hz stamps)."""
    from sensor_msgs.msg import CompressedImage

    encoding, data = payload
    image, info, stamp = image_message(np.zeros((1, 1, 3), np.uint8), index)   # header, stamps
    info.width, info.height = width, height
    info.k = [520.0 * width / 640, 0.0, width / 2, 0.0, 520.0 * width / 640, height / 2, 0.0, 0.0, 1.0]
    if encoding == "jpeg":
        message = CompressedImage(format="jpeg", data=data)
        message.header = image.header
        return message, info, stamp
    image.width, image.height, image.encoding = width, height, encoding
    image.step, image.data = len(data) // height, data
    return image, info, stamp


def run_frame(processor, image, info, stamp, want_markers: bool, want_points: bool, device: str):
    """One frame: ``process`` + CDR serialisation of every output; (outputs, end-to-end s)."""
    from rclpy.serialization import serialize_message

    if device == "cuda":
        torch.cuda.synchronize()
    c0 = time.thread_time()
    t0 = time.perf_counter()
    out = processor.process(image, info, want_markers=want_markers, want_points=want_points, now=stamp)
    t = time.perf_counter()
    # What the node publishes: SmplBodyArray, TF and markers as CDR bytes; body points as bytes
    # where the frame gives a bundle, else serialised like rclpy does for a message object.
    payload = [out.bodies.serialize(), out.transforms.serialize()]
    if out.markers is not None:
        payload.append(out.markers.serialize())
    if out.body_points is not None:
        points = out.body_points
        payload.append(points.serialize() if hasattr(points, "serialize") else serialize_message(points))
    out.timings["serialise"] = time.perf_counter() - t
    end = time.perf_counter() - t0
    # CPU time of this thread: on a shared machine less disturbed by other processes than the
    # wall time (equal to it when the machine is idle and torch runs with one thread).
    out.timings["cpu_time"] = time.thread_time() - c0
    if not all(payload):
        raise RuntimeError("empty message")
    return out, end


def run_case(estimator, people: int, subscribers: str, frames: int, warmup: int, device: str,
             body_points_stride: int = 1, size=(640, 480), encoding: str = "rgb8") -> dict:
    want_markers, want_points, rate = SUBSCRIBERS[subscribers]
    width, height = size
    processor = make_processor(estimator, scene_boxes(people, width, height), rate, body_points_stride)
    payload = frame_payload(width, height, encoding, seed=people)
    samples: dict = {}
    for i in range(warmup + frames):
        image, info, stamp = frame_message(payload, width, height, i)
        out, end = run_frame(processor, image, info, stamp, want_markers, want_points, device)
        if out.people != people:
            raise RuntimeError(f"frame {i}: {out.people} people published, expected {people}")
        if want_points and out.body_points is None:
            raise RuntimeError("body points were asked for but not built")
        if i < warmup:
            continue
        for stage, seconds in out.timings.items():
            samples.setdefault(stage, []).append(seconds)
        samples.setdefault("end_to_end", []).append(end)
    stats = {stage: percentiles(v) for stage, v in samples.items()}
    return {"people": people, "subscribers": subscribers, "image": f"{width}x{height} {encoding}", **stats}


def stage_names(cases) -> list:
    seen = {stage for case in cases for stage in case if stage not in ("people", "subscribers", "image", "end_to_end")}
    ordered = [s for s in ORDER if s in seen and s != "cpu_time"] + sorted(seen - set(ORDER))
    return ordered + (["cpu_time"] if "cpu_time" in seen else [])


def table(cases) -> str:
    stages = stage_names(cases)
    head = ["subscribers", "people", *stages, "**end to end**"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in cases:
        cells = [f"{case[s][0]:.2f} / {case[s][1]:.2f}" if s in case else "–" for s in stages]
        cells.append(f"**{case['end_to_end'][0]:.1f} / {case['end_to_end'][1]:.1f}**")
        lines.append(f"| {case['subscribers']} | {case['people']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_line() -> str:
    load = ", load average %.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    import cv2
    from threadpoolctl import threadpool_info

    blas = max((lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"), default=None)
    return (f"{platform.machine()} {os.cpu_count()} CPUs{load}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads; OpenCV {cv2.getNumThreads()}, BLAS {blas}), CUDA: {cuda}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--subscribers", nargs="+", choices=sorted(SUBSCRIBERS), default=list(SUBSCRIBERS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda (crops, SMPL and the stand-in's outputs)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch, OpenCV and OpenBLAS threads (1 keeps all the work on the measured thread)")
    parser.add_argument("--host-threads", type=int, default=1,
                        help="without --threads: the node's host_threads parameter (torch's pool and the "
                             "BLAS; 0 = the libraries' defaults)")
    parser.add_argument("--body-points-stride", type=int, default=1,
                        help="the node's body_points.stride (every n-th vertex on ~/body_points; default 1)")
    parser.add_argument("--image-size", type=image_size, default=(640, 480), metavar="WxH",
                        help="frame size (default 640x480); the people scale with the height")
    parser.add_argument("--encoding", choices=ENCODINGS, default="rgb8",
                        help="the frames' encoding (default rgb8; jpeg: a CompressedImage)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        import cv2

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)          # the crops' warps (OpenCV's own thread pool)
    else:
        from pare_ros.host_threads import limit_host_threads

        limit_host_threads(args.host_threads)     # as the node does at configure
    if args.warmup < 1:
        parser.error("--warmup must be ≥ 1 (the first frame pays for lazy initialisation)")
    try:
        import rclpy  # noqa: F401
        from sensor_msgs.msg import Image  # noqa: F401
        from pare_ros.msg import SmplBody  # noqa: F401
    except ImportError as exc:
        print(f"error: needs the ROS 2 environment and the built pare_ros messages "
              f"(source scripts/env.sh): {exc}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device", file=sys.stderr)
        return 2
    estimator = make_estimator(args.device, max(args.people))
    print(f"machine: {machine_line()}\nzero-cost network (NullNetwork) on {args.device}; "
          f"{args.image_size[0]}x{args.image_size[1]} {args.encoding} frames; "
          f"{args.frames} frames after {args.warmup} warm-up per case; times in ms, p50 / p95", flush=True)
    cases = []
    for subscribers in args.subscribers:
        for people in args.people:
            case = run_case(estimator, people, subscribers, args.frames, args.warmup, args.device,
                            args.body_points_stride, args.image_size, args.encoding)
            cases.append(case)
            print(f"  {subscribers:16s} {people} people: end to end "
                  f"{case['end_to_end'][0]:.2f} / {case['end_to_end'][1]:.2f} ms", flush=True)
    print(f"machine after: {machine_line()}")
    print("\n" + table(cases))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine_line(), "device": args.device, "frames": args.frames,
                                         "warmup": args.warmup, "image_size": list(args.image_size),
                                         "encoding": args.encoding, "cases": cases}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
