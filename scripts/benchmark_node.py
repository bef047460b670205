"""End-to-end latency of pare_node over DDS (image stamp → ~/bodies publication) and its
per-stage split, for 1 and 4 people, on this machine.

Starts pare_node as its own process (untrained weights + synthetic body model unless the
official files are in model/; speed does not depend on the weights), publishes frames from this
process at a rate the node can sustain, and reads the ``latency`` field of ~/bodies and the
per-stage p50/p95 the node reports on /diagnostics.

    python scripts/benchmark_node.py --people 1 4 --frames 12
    python scripts/benchmark_node.py --onnx out/pare_untrained.onnx   # ONNX Runtime backend

``--onnx PATH`` runs the node with ``backend: onnxruntime`` on that file (exported first from the
untrained network if it does not exist); default: the node's ``auto`` choice.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BOXES = ["20,20,300,460", "340,30,620,470", "150,40,330,470", "420,10,630,300"]


def run(people: int, frames: int, period: float, onnx: Path | None = None) -> dict:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from diagnostic_msgs.msg import DiagnosticArray
    from pare_ros.msg import SmplBodyArray

    domain = random.randint(1, 100)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    args = [sys.executable, "-m", "pare_ros.ros.node", "--ros-args",
            "-p", "model.allow_untrained:=true", "-p", "detector.kind:=fixed",
            "-p", f"detector.fixed_boxes:={';'.join(BOXES[:people])}", "-p", "tracker.min_hits:=1",
            "-p", "image_qos.reliability:=reliable", "-p", "max_image_age:=0.0",
            "-p", "diagnostics_period:=0.5", "-r", "image:=/bench/image", "-r", "camera_info:=/bench/camera_info"]
    if onnx is not None:
        args[args.index("--ros-args") + 1:args.index("--ros-args") + 1] = [
            "-p", "backend:=onnxruntime", "-p", f"model.onnx_path:={onnx}"]
    log = open(f"/tmp/benchmark_node_{people}.log", "w")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("pare_benchmark", context=context)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, "/bench/image", qos)
    info_pub = node.create_publisher(CameraInfo, "/bench/camera_info", qos)
    bodies, diags = [], []
    node.create_subscription(SmplBodyArray, "/pare_node/bodies", bodies.append, qos)
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, qos)
    pixels = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8).tobytes()

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.02)

    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (image_pub.get_subscription_count() == 0
                                               or node.count_publishers("/pare_node/bodies") == 0):
            spin(0.2)
        spin(2.0)
        for i in range(frames + 2):                        # 2 warm-up frames
            stamp = node.get_clock().now().to_msg()
            info = CameraInfo(width=640, height=480, k=[520.0, 0, 320.0, 0, 520.0, 240.0, 0, 0, 1.0])
            image = Image(width=640, height=480, encoding="rgb8", step=1920, data=pixels)
            for msg in (info, image):
                msg.header.stamp, msg.header.frame_id = stamp, "bench_optical"
            info_pub.publish(info)
            image_pub.publish(image)
            spin(period)
        spin(2.0)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    latencies = [b.latency for b in bodies[2:]]
    stages = {}
    for status in (diags[-1].status if diags else []):
        if status.name.endswith("/inference"):
            stages = {kv.key: kv.value for kv in status.values if kv.key.endswith("[ms]")}
    return {"people": people, "frames": len(latencies), "latencies": latencies, "stages": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--onnx", type=Path, default=None, help="run with backend onnxruntime on this file")
    args = parser.parse_args()
    if args.onnx is not None and not args.onnx.is_file():
        from pare_ros.assets import untrained_network
        from pare_ros.backends.onnx_export import export_onnx

        export_onnx(untrained_network(), args.onnx, {"checkpoint": "UNTRAINED (benchmark)"})
    for people in args.people:
        result = run(people, args.frames, period=0.8 + 0.5 * people, onnx=args.onnx)
        lat = result["latencies"]
        print(f"\n{people} person(s), {result['frames']} frames: end-to-end latency "
              f"p50 {1000 * statistics.median(lat):.0f} ms, max {1000 * max(lat):.0f} ms")
        for key, value in result["stages"].items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
