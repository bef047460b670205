"""A camera driver stand-in: publishes a photo, an image folder or a video as
``sensor_msgs/Image`` + ``sensor_msgs/CameraInfo`` at a fixed rate, for users without a live
camera and for the project's main job and tests.

    ros2 run pare_ros camera_replay --ros-args -p source:=skimage:astronaut -p rate:=5.0

``wait_for_node:=/pare_node`` holds the first frame until that node's image and CameraInfo
subscriptions are matched *and* it is active (lifecycle ``get_state``), not merely until
something (a bag recorder) subscribes; ``wait_for_output:=/pare_node/bodies`` sends each next
frame only after the output for the previous one came (or ``output_timeout`` passed), so a slow
CPU drops no frame of a replay.
"""
from __future__ import annotations

import sys
import time
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
from ..msg import SmplBodyArray
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
        self.declare_parameter("wait_for_node", "",
                               d("fully qualified name of the consumer to wait for (e.g. /pare_node): "
                                 "its subscriptions matched and its lifecycle state active"))
        self.declare_parameter("wait_for_output", "",
                               d("pare_ros/SmplBodyArray topic: send the next frame only after the output "
                                 "for the previous one (lock-step replay, no frame dropped)"))
        # CPU inference on a loaded 2-core machine took over 30 s for a warm-up frame.
        self.declare_parameter("output_timeout", 180.0, d("s to wait for an output in lock-step mode"))
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        self.image_pub = self.create_publisher(Image, "image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        self.frames = iter_frames(p("source"), p("loop"))
        self.frame_id, self.count, self.sent = p("frame_id"), int(p("count")), 0
        self.intrinsics_param = [float(v) for v in p("intrinsics")]
        self.wait_for_node = str(p("wait_for_node")).rstrip("/")
        self._node_ready = not self.wait_for_node
        self._state_client, self._state_future = None, None
        self._awaited, self._awaited_since, self.outputs = None, 0.0, 0
        if p("wait_for_output"):
            self.output_timeout = float(p("output_timeout"))
            self.create_subscription(SmplBodyArray, p("wait_for_output"), self._on_output,
                                     QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.lockstep = bool(p("wait_for_output"))
        self.timer = self.create_timer(1.0 / max(float(p("rate")), 1e-3), self._tick)
        self.get_logger().info(f"replaying {p('source')} at {p('rate')} Hz on {self.image_pub.topic_name}")

    def _subscribed(self, pub) -> bool:
        """The awaited node is among the publisher's subscribers and every subscriber in the
        graph is matched (a sample published now reaches them)."""
        infos = self.get_subscriptions_info_by_topic(pub.topic_name)
        names = {f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos}
        return self.wait_for_node in names and pub.get_subscription_count() >= len(infos)

    def _consumer_ready(self) -> bool:
        if self._node_ready:
            return True
        if not (self._subscribed(self.image_pub) and self._subscribed(self.info_pub)):
            return False
        from lifecycle_msgs.msg import State
        from lifecycle_msgs.srv import GetState

        if self._state_client is None:
            self._state_client = self.create_client(GetState, f"{self.wait_for_node}/get_state")
        if self._state_future is None:
            if self._state_client.service_is_ready():
                self._state_future = self._state_client.call_async(GetState.Request())
        elif self._state_future.done():
            result = self._state_future.result()
            self._state_future = None
            if result is not None and result.current_state.id == State.PRIMARY_STATE_ACTIVE:
                self._node_ready = True
                self.get_logger().info(f"{self.wait_for_node} is active and subscribed")
        return self._node_ready

    def _on_output(self, msg) -> None:
        if self._awaited is not None and msg.header.stamp == self._awaited:
            self._awaited = None
            self.outputs += 1

    def _tick(self) -> None:
        if self.sent == 0:
            if not self._consumer_ready():
                return
            if self.get_parameter("wait_for_subscribers").value and (
                    self.image_pub.get_subscription_count() == 0 or self.info_pub.get_subscription_count() == 0):
                return
        if self._awaited is not None:
            if time.monotonic() - self._awaited_since < self.output_timeout:
                return
            self.get_logger().warning(f"no output for frame {self.sent} within {self.output_timeout:.0f} s")
            self._awaited = None
        frame = next(self.frames, None)
        if frame is None or (self.count and self.sent >= self.count):
            self.get_logger().info(f"done after {self.sent} frames"
                                   + (f", {self.outputs} outputs" if self.lockstep else ""))
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
        if self.lockstep:
            self._awaited, self._awaited_since = msg.header.stamp, time.monotonic()


def main(argv=None) -> int:
    rclpy.init(args=argv)
    return spin_until_shutdown(CameraReplay())

if __name__ == "__main__":
    sys.exit(main())
