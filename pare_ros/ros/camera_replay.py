"""A camera driver stand-in: publishes a photo, an image folder or a video as
``sensor_msgs/Image`` + ``sensor_msgs/CameraInfo`` at a fixed rate, for users without a live
camera and for the project's main job and tests.

    ros2 run pare_ros camera_replay --ros-args -p source:=skimage:astronaut -p rate:=5.0
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, List

import cv2
import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy
from sensor_msgs.msg import CameraInfo, Image

from ..camera import Intrinsics
from ..inference_cli import load_image_rgb
from .spin import spin_until_shutdown

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def iter_frames(source: str, loop: bool) -> Iterator[np.ndarray]:
    """RGB frames from ``skimage:<name>``, an image file, a folder of images or a video."""
    path = Path(source)
    while True:
        if source.startswith("skimage:") or path.suffix.lower() in IMAGE_SUFFIXES:
            yield load_image_rgb(source)
        elif path.is_dir():
            files: List[Path] = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"no images in {path}")
            for file in files:
                yield load_image_rgb(str(file))
        else:
            capture = cv2.VideoCapture(str(path))
            if not capture.isOpened():
                raise FileNotFoundError(f"cannot open {source} as an image, folder or video")
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            capture.release()
        if not loop:
            return


def camera_info_msg(intrinsics: Intrinsics, width: int, height: int, header) -> CameraInfo:
    info = CameraInfo()
    info.header = header
    info.width, info.height = width, height
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    fx, fy, cx, cy = intrinsics.as_tuple()
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


class CameraReplay(Node):
    def __init__(self) -> None:
        super().__init__("camera_replay")
        d = lambda text: ParameterDescriptor(description=text)  # noqa: E731
        self.declare_parameter("source", "skimage:astronaut", d("photo, image folder, video, or skimage:<name>"))
        self.declare_parameter("rate", 5.0, d("frames per second"))
        self.declare_parameter("frame_id", "camera_color_optical_frame", d("optical frame of the images"))
        self.declare_parameter("intrinsics", [0.0, 0.0, 0.0, 0.0], d("fx, fy, cx, cy; zeros: 60° FOV, centred"))
        self.declare_parameter("loop", True, d("restart at the end of the source"))
        self.declare_parameter("count", 0, d("stop after this many frames (0 = never)"))
        self.declare_parameter("wait_for_subscribers", True,
                               d("hold the first frame until something subscribes to the image"))
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        self.image_pub = self.create_publisher(Image, "image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        self.frames = iter_frames(p("source"), p("loop"))
        self.frame_id, self.count, self.sent = p("frame_id"), int(p("count")), 0
        self.intrinsics_param = [float(v) for v in p("intrinsics")]
        self.timer = self.create_timer(1.0 / max(float(p("rate")), 1e-3), self._tick)
        self.get_logger().info(f"replaying {p('source')} at {p('rate')} Hz on {self.image_pub.topic_name}")

    def _tick(self) -> None:
        if self.sent == 0 and self.get_parameter("wait_for_subscribers").value and (
                self.image_pub.get_subscription_count() == 0 or self.info_pub.get_subscription_count() == 0):
            return
        frame = next(self.frames, None)
        if frame is None or (self.count and self.sent >= self.count):
            self.get_logger().info(f"done after {self.sent} frames")
            self.timer.cancel()
            raise SystemExit(0)
        height, width = frame.shape[:2]
        fx = self.intrinsics_param
        k = Intrinsics(*fx) if fx[0] > 0 else Intrinsics.default_for(width, height)
        msg = Image()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        msg.height, msg.width, msg.encoding, msg.step = height, width, "rgb8", width * 3
        msg.data = frame.tobytes()
        self.image_pub.publish(msg)
        self.info_pub.publish(camera_info_msg(k, width, height, msg.header))
        self.sent += 1


def main(argv=None) -> int:
    rclpy.init(args=argv)
    return spin_until_shutdown(CameraReplay())

if __name__ == "__main__":
    sys.exit(main())
