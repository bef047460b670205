"""pare_node: camera images in; SMPL bodies, per-joint TF frames and RViz markers out.

A thin ROS layer over :class:`~pare_ros.ros.frame_processor.FrameProcessor`. Callbacks only put
the newest image into a one-slot buffer; one worker thread runs the pipeline and publishes, so
callbacks never block and latency never grows (older frames are dropped and counted).
"""
from __future__ import annotations

import collections
import sys
import threading
import time
import traceback
from typing import Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_system_default)
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import MarkerArray

from ..msg import SmplBodyArray
from .camera_info import CameraInfoCache
from .frame_processor import FrameError, FrameProcessor, ProcessorSettings, stamp_seconds
from .parameters import PARAMETERS, check_choice
from .pipeline_factory import StartupError, build_processor, reconfigure
from .spin import spin_until_shutdown
from .stats import Counters, LatencyTracker, RateTracker, diagnostic_status

try:  # tf2_ros on a normal ROS 2 install; a plain /tf publisher where it is missing
    from tf2_ros import TransformBroadcaster
except ImportError:  # pragma: no cover - depends on the installation
    TransformBroadcaster = None

INPUT_ERRORS = ("encoding", "step", "truncated", "oversized", "empty", "decode", "zero_k",
                "size_mismatch", "missing_camera_info", "stamp_backwards", "internal_error")
CAMERA_INFO_WAIT = 0.1   # s to wait for the CameraInfo with the image's exact stamp
# ... when the previous image had its exact CameraInfo: the driver stamps both alike, so the
# info is on its way (image and info callbacks can run in either order, late under CPU load)
# and falling back to an older info would be wrong.
CAMERA_INFO_WAIT_PAIRED = 0.5


class PareNode(Node):
    def __init__(self) -> None:
        super().__init__("pare_node")
        for param in PARAMETERS:
            self.declare_parameter(param.name, param.default, param.descriptor())
        # The pipeline reads parameters from this snapshot, updated by the set-parameters
        # callback, so a change applies at once (Humble has no post-set callback).
        self._values = {param.name: self.get_parameter(param.name).value for param in PARAMETERS}
        for param in PARAMETERS:
            problem = check_choice(param.name, self.p(param.name))
            if problem:
                raise StartupError(problem)

        self.counters = Counters(*INPUT_ERRORS, "stale", "overrun", "processed", "published",
                                 "missing_detections", "paused", "camera_info_received")
        self.latency = LatencyTracker()
        self.image_rate, self.output_rate = RateTracker(), RateTracker()
        self.processor, self.backend_label, self.report = build_processor(self, self.settings())
        self.get_logger().info(self.report.banner())
        if self.report.meaningless:
            self.get_logger().warning("results are MEANINGLESS until the files listed above are provided")

        self._init_publishers()
        self._init_subscriptions()
        self._slot: Optional[Image] = None
        self._slot_lock = threading.Condition()
        self._stop = threading.Event()
        self._last_stamp: Optional[float] = None
        self._skipped_since_publish = 0
        self._people = 0
        self._info_mode = "none"
        self._enabled = True
        self._processor_lock = threading.Lock()   # the worker's frame vs. service-requested resets
        self.create_service(Trigger, "~/reset_tracks", self._on_reset_tracks)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self._worker = threading.Thread(target=self._work, name="pare_worker", daemon=True)
        self._worker.start()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(float(self.p("diagnostics_period")), self._publish_diagnostics)

    # -- parameters ----------------------------------------------------------------------
    def p(self, name: str):
        return self._values[name]

    def settings(self) -> ProcessorSettings:
        return ProcessorSettings(
            publish_tf=self.p("publish_tf"), joint_frames=self.p("tf.joint_frames"),
            tf_prefix=self.p("tf.prefix"), publish_markers=self.p("publish_markers"),
            markers_mesh=self.p("markers.mesh"), markers_max_rate=self.p("markers.max_rate"),
            markers_color_mode=self.p("markers.color_mode"), markers_alpha=self.p("markers.alpha"),
            publish_debug_image=self.p("publish_debug_image"),
            publish_body_points=self.p("publish_body_points"), body_points_stride=self.p("body_points.stride"),
            publish_rotmats=self.p("publish_rotmats"), publish_vertices=self.p("publish_vertices"),
            intrinsics_source=self.p("intrinsics_source"))

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            problem = check_choice(param.name, param.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        previous = dict(self._values)
        self._values.update({param.name: param.value for param in params})
        try:
            # Rebuild the detector (a new ONNX Runtime session for YOLO) only when needed.
            if any(param.name.startswith(("detector.", "tracker.")) for param in params):
                reconfigure(self.processor, self)
        except ValueError as exc:
            self._values = previous
            return SetParametersResult(successful=False, reason=str(exc))
        self.processor.settings = self.settings()
        self.get_logger().info("parameters updated: " + ", ".join(f"{p.name}={p.value!r}" for p in params))
        return SetParametersResult(successful=True)

    # -- graph ---------------------------------------------------------------------------
    def _init_publishers(self) -> None:
        reliable = lambda depth: QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,  # noqa: E731
                                            history=HistoryPolicy.KEEP_LAST)
        self.bodies_pub = self.create_publisher(SmplBodyArray, "~/bodies", reliable(10))
        self.markers_pub = self.create_publisher(MarkerArray, "~/markers", reliable(1))
        self.debug_pub = self.create_publisher(Image, "~/debug_image", reliable(1))
        self.points_pub = self.create_publisher(PointCloud2, "~/body_points", reliable(1))
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", reliable(10))
        if TransformBroadcaster is not None:
            self.tf_broadcaster = TransformBroadcaster(self)
            self._send_tf = self.tf_broadcaster.sendTransform
        else:
            from tf2_msgs.msg import TFMessage

            tf_pub = self.create_publisher(TFMessage, "/tf", reliable(100))
            self._send_tf = lambda transforms: tf_pub.publish(TFMessage(transforms=transforms))

    def _init_subscriptions(self) -> None:
        reliability = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE,
                       "system_default": qos_profile_system_default.reliability}[self.p("image_qos.reliability")]
        image_qos = QoSProfile(depth=int(self.p("image_qos.depth")), reliability=reliability,
                               history=HistoryPolicy.KEEP_LAST, durability=DurabilityPolicy.VOLATILE)
        info_qos = QoSProfile(depth=10, reliability=reliability, history=HistoryPolicy.KEEP_LAST)
        self.info_cache = CameraInfoCache(size=20)
        if self.p("image_transport") == "compressed":
            self.image_sub = self.create_subscription(CompressedImage, "image/compressed", self._on_image, image_qos)
        else:
            self.image_sub = self.create_subscription(Image, "image", self._on_image, image_qos)
        self.info_sub = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, info_qos)
        self._upstream = collections.OrderedDict()      # stamp (ns) → Detection2DArray
        if self.p("detector.kind") == "topic":
            try:
                from vision_msgs.msg import Detection2DArray
            except ImportError as exc:
                raise StartupError("detector.kind 'topic' needs the vision_msgs package "
                                   "(e.g. apt install ros-$ROS_DISTRO-vision-msgs)") from exc
            self.create_subscription(Detection2DArray, "detections", self._on_detections,
                                     QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.get_logger().info(f"listening on {self.image_sub.topic_name} and {self.info_sub.topic_name}")

    # -- services ------------------------------------------------------------------------
    def _on_reset_tracks(self, request, response):
        with self._processor_lock:
            self.processor.reset()
        response.success, response.message = True, "all tracks dropped; new body IDs from the next frame"
        self.get_logger().info("tracks reset on request")
        return response

    def _on_enable(self, request, response):
        """Pause or resume inference; the model stays loaded (and on the GPU)."""
        self._enabled = bool(request.data)
        response.success = True
        response.message = "inference enabled" if self._enabled else "inference paused (frames are dropped)"
        self.get_logger().info(response.message)
        return response

    # -- input ---------------------------------------------------------------------------
    def _on_detections(self, msg) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self._upstream[stamp] = msg
        while len(self._upstream) > 30:
            self._upstream.popitem(last=False)

    def _upstream_detections(self, msg, size):
        """Boxes from the upstream detector for this image's stamp (waiting briefly for them);
        nobody when they do not come."""
        from ..detection.detection2d import boxes_from_detection2d_array

        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        deadline = time.monotonic() + CAMERA_INFO_WAIT
        while stamp not in self._upstream and time.monotonic() < deadline:
            time.sleep(0.005)
        upstream = self._upstream.get(stamp)
        if upstream is None:
            self.counters.increment("missing_detections")
            from ..detection.base import Detections

            return Detections()
        return boxes_from_detection2d_array(upstream, image_size=size,
                                            score_threshold=float(self.p("detector.score_threshold")),
                                            min_box_height=float(self.p("detector.min_box_height")),
                                            max_people=int(self.p("detector.max_people")))

    def _on_camera_info(self, msg) -> None:
        self.info_cache.add(msg)
        self.counters.increment("camera_info_received")

    def _on_image(self, msg) -> None:
        self.image_rate.tick()
        with self._slot_lock:
            if self._slot is not None:
                self.counters.increment("overrun")
                self._skipped_since_publish += 1
            self._slot = msg
            self._slot_lock.notify()

    def _take(self):
        with self._slot_lock:
            while self._slot is None and not self._stop.is_set():
                self._slot_lock.wait(0.1)
            msg, self._slot = self._slot, None
            return msg

    def _work(self) -> None:
        last_start = 0.0
        while not self._stop.is_set():
            msg = self._take()
            if msg is None:
                continue
            max_rate = float(self.p("max_rate"))
            if max_rate > 0:
                time.sleep(max(0.0, last_start + 1.0 / max_rate - time.monotonic()))
            last_start = time.monotonic()
            try:
                self._process(msg)
            except Exception as exc:  # noqa: BLE001 - never let one frame stop the node
                self.counters.increment("internal_error")
                self.get_logger().error(f"frame failed: {exc}\n{traceback.format_exc(limit=3)}",
                                        throttle_duration_sec=5.0)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _reject(self, reason: str, message: str) -> None:
        self.counters.increment(reason)
        self._skipped_since_publish += 1
        self.get_logger().warning(f"skipping frame ({reason}): {message}", throttle_duration_sec=2.0)

    def _process(self, msg) -> None:
        if not self._enabled:
            self.counters.increment("paused")
            return
        with self._processor_lock:
            self._process_locked(msg)

    def _process_locked(self, msg) -> None:
        stamp = stamp_seconds(msg.header.stamp)
        age = self._now() - stamp
        max_age = float(self.p("max_image_age"))
        if max_age > 0 and age > max_age:
            self.counters.increment("stale")
            self._skipped_since_publish += 1
            return
        if self._last_stamp is not None and stamp < self._last_stamp:
            if self._last_stamp - stamp > 1.0:
                # A large jump back is a restarted bag or a reset clock: start over.
                self.counters.increment("stamp_backwards")
                self.get_logger().warning("image stamps jumped back; resetting tracks",
                                          throttle_duration_sec=2.0)
                self.processor.reset()
            else:
                self._reject("stamp_backwards", f"stamp {stamp:.3f} older than {self._last_stamp:.3f}")
                return
        size = (msg.width, msg.height) if hasattr(msg, "width") else None
        # Image and CameraInfo travel on separate topics: give the matching info a moment
        # to arrive before falling back to the latest one.
        wait = CAMERA_INFO_WAIT_PAIRED if self._info_mode == "exact" else CAMERA_INFO_WAIT
        deadline = time.monotonic() + wait
        while True:
            info, self._info_mode = self.info_cache.lookup(
                msg.header.stamp, msg.header.frame_id, allow_latest=False, image_size=size)
            if info is not None or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        if info is None and self.p("camera_info.allow_latest"):
            info, self._info_mode = self.info_cache.lookup(
                msg.header.stamp, msg.header.frame_id, allow_latest=True, image_size=size)
        detections = self._upstream_detections(msg, size) if self.p("detector.kind") == "topic" else None
        try:
            out = self.processor.process(
                msg, info, want_markers=self.markers_pub.get_subscription_count() > 0,
                want_debug=self.debug_pub.get_subscription_count() > 0, detections=detections,
                want_points=self.points_pub.get_subscription_count() > 0)
        except FrameError as exc:
            self._reject(exc.reason, str(exc))
            return
        self._last_stamp = stamp
        self.counters.increment("processed")
        for warning in out.warnings:
            self.get_logger().warning(warning)

        t = time.perf_counter()
        out.bodies.frames_skipped = self._skipped_since_publish
        out.bodies.latency = float(self._now() - stamp)
        self.bodies_pub.publish(out.bodies)
        if out.transforms:
            self._send_tf(out.transforms)
        if out.markers is not None and len(out.markers):
            self.markers_pub.publish(out.markers.serialize())   # spliced bytes: ~1 ms, not ~36
        if out.debug_image is not None:
            self.debug_pub.publish(out.debug_image)
        if out.body_points is not None:
            self.points_pub.publish(out.body_points)
        out.timings["publish"] = time.perf_counter() - t
        out.timings["end_to_end"] = self._now() - stamp
        self.latency.add_many(out.timings)
        self._skipped_since_publish = 0
        self._people = out.people
        self.counters.increment("published")
        self.output_rate.tick()

    # -- diagnostics ---------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        name = f"pare_ros/{self.get_fully_qualified_name().lstrip('/')}"
        expected = float(self.p("expected_rate"))
        counts = self.counters.snapshot()
        since = self.image_rate.since_last()
        in_rate, out_rate = self.image_rate.rate(), self.output_rate.rate()
        ok, warn, error = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
        bad_inputs = {k: counts.get(k, 0) for k in INPUT_ERRORS}
        if since is None or since > 5.0:
            in_level, in_msg = error, f"no images on {self.image_sub.topic_name} for 5 s"
        elif sum(bad_inputs.values()):
            in_level, in_msg = warn, "bad input frames were skipped (see counters)"
        else:
            in_level, in_msg = ok, "receiving images"
        stages = self.latency.summary()
        p95 = stages.get("end_to_end", {}).get("p95", 0.0)
        inf_level, inf_msg = (warn, "p95 latency above 2/expected_rate") if p95 > 2.0 / expected else (ok, "ok")
        skipped = counts["stale"] + counts["overrun"]
        total = skipped + counts["published"]
        if not self._enabled:
            out_level, out_msg = ok, "paused (~/enable false)"
        elif total and skipped / total > 0.2:
            out_level, out_msg = warn, f"{100 * skipped / total:.0f} % of frames skipped"
        elif counts["published"] and out_rate < 0.8 * expected:
            out_level, out_msg = warn, f"publishing at {out_rate:.1f} Hz, expected {expected:.1f}"
        else:
            out_level, out_msg = ok, "ok"
        hw = self.backend_label
        stage_values = {f"{stage} p{q} [ms]": 1000 * v[f"p{q}"] for stage, v in stages.items() for q in (50, 95)}
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [
            diagnostic_status(f"{name}/input", hw, in_level, in_msg, {
                "topic": self.image_sub.topic_name, "image rate [Hz]": in_rate,
                "seconds since last image": since if since is not None else -1.0,
                "camera_info pairing": self._info_mode,
                "camera_info received": counts["camera_info_received"], **bad_inputs}),
            diagnostic_status(f"{name}/inference", hw, inf_level, inf_msg, {
                "backend": self.backend_label, "model": self.report.checkpoint,
                "body model": self.report.smpl_dir, "meaningless": self.report.meaningless,
                **stage_values}),
            diagnostic_status(f"{name}/output", hw, out_level, out_msg, {
                "publish rate [Hz]": out_rate, "people in last frame": self._people,
                "frames published": counts["published"], "frames skipped (stale)": counts["stale"],
                "frames skipped (overrun)": counts["overrun"], "enabled": self._enabled,
                "frames dropped while paused": counts["paused"]}),
        ]
        self.diag_pub.publish(array)

    def shutdown(self) -> None:
        self._stop.set()
        with self._slot_lock:
            self._slot_lock.notify_all()
        self._worker.join(timeout=5.0)


def main(argv=None) -> int:
    rclpy.init(args=argv)
    logger = rclpy.logging.get_logger("pare_node")
    try:
        node = PareNode()
    except StartupError as exc:
        logger.fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    return spin_until_shutdown(node, on_exit=node.shutdown)


if __name__ == "__main__":
    sys.exit(main())
