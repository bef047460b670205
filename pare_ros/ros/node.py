"""pare_node: camera images in; SMPL bodies, per-joint TF frames and RViz markers out.

A thin, managed (lifecycle) ROS layer over :class:`~pare_ros.ros.frame_processor.FrameProcessor`,
like yolo_ros and the Nav2 nodes:

* configure: validate parameters, load the model (missing files → the transition fails with
  the exact path logged), create the output publishers, start the worker thread;
* activate: subscribe to the camera (and enable the lifecycle publishers);
* deactivate: unsubscribe (inference pauses, the model stays loaded), delete the markers;
* cleanup / shutdown: stop the worker, release the model and the publishers.

``autostart`` (default true) configures and activates in :func:`main`, so ``ros2 run`` and the
launch file behave like a plain node; with ``autostart:=false`` a lifecycle manager drives it.

Threads: callbacks only put the newest frame into a one-slot buffer; one worker thread runs the
pipeline and publishes, so callbacks never block and latency never grows (older frames are
dropped and counted). The worker is the only user of the processor: track resets and
parameter-triggered rebuilds are requests it applies before its next frame, so services answer
at once (they have their own callback group on a MultiThreadedExecutor) and never race a frame.

Where things are: parameter snapshot, ``settings()`` and set-parameter callbacks in
node_parameters.py; lifecycle transitions, publishers (``_init_publishers``) and subscriptions
in node_lifecycle.py; /diagnostics in node_diagnostics.py; frame handling here.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import MarkerArray

from .camera_info import CameraInfoError, intrinsics_from_camera_info, is_uncalibrated, stamp_to_ns
from .frame_types import FrameError, stamp_seconds
from .detection_pairing import DetectionPairing
from .info_pairing import InfoPairing
from .markers import delete_all
from .node_diagnostics import build_diagnostics
from .node_lifecycle import SUCCESS, NodeLifecycle
from .node_parameters import NodeParameters
from .parameters import PARAMETERS, check_choice, coerce
from .pipeline_factory import StartupError
from .spin import spin_until_shutdown
from .input_guard import BAD_STAMP_REASONS, OTHER_COUNTERS, GuardSettings, InputGuard
from .stats import Counters, LatencyTracker, RateTracker, ThrottledLog

#: Bad input, counted per reason in the input status (the frame is skipped, nothing published).
SHUTDOWN_WAIT = 120.0   # s to let the worker finish its frame before the pipeline is released
INPUT_ERRORS = ("encoding", "step", "truncated", "oversized", "empty", "decode", "image_size",
                "zero_k", "implausible_k", "size_mismatch", "missing_camera_info", "no_frame_id",
                *BAD_STAMP_REASONS)
#: The node's own failures (a bug, not the input's fault): the inference status reports them.
NODE_ERRORS = ("internal_error",)


class PareNode(NodeParameters, NodeLifecycle, LifecycleNode):
    def __init__(self) -> None:
        super().__init__("pare_node")
        for param in PARAMETERS:
            self.declare_parameter(param.name, param.default, param.descriptor())
        # The pipeline reads parameters from this snapshot, updated by the set-parameters
        # callback, so a change applies at once (Humble has no post-set callback).
        try:
            self._values = {p.name: coerce(p.name, self.get_parameter(p.name).value) for p in PARAMETERS}
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        for param in PARAMETERS:
            problem = check_choice(param.name, self.p(param.name))
            if problem:
                raise StartupError(problem)
        self.add_pre_set_parameters_callback(self._coerce_parameters)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.counters = Counters(*INPUT_ERRORS, *NODE_ERRORS, *OTHER_COUNTERS, "overrun", "processed",
                                 "published", "paused", "camera_info_received")
        self.guard = InputGuard(self._guard_settings())
        # Throttled logs that say how many messages they held back (counters stay exact).
        self._reject_log, self._error_log, self._clock_log = ThrottledLog(2.0), ThrottledLog(5.0), ThrottledLog(30.0)
        self.latency = LatencyTracker()
        self.image_rate, self.output_rate = RateTracker(), RateTracker()
        self.processor, self.backend_label, self.report, self.startup_error = None, "not configured", None, ""
        self.lifecycle_state = "unconfigured"
        self.image_sub = self.info_sub = self.detections_sub = None
        self.image_topic = self.resolve_topic_name("image")
        self.info_pairing = InfoPairing(size=20, wait=self.p("camera_info.wait"), is_valid=self._info_is_valid)
        self.detection_pairing: Optional[DetectionPairing] = None
        self._slot = None                               # (image msg, upstream detections or None)
        self._slot_lock = threading.Condition()
        # Held by the worker for a whole frame: deactivate takes it so that the planner outputs
        # it resets are never destroyed under a frame that is publishing them.
        self._frame_lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: Optional[threading.Thread] = None
        self._requests_lock = threading.Lock()          # service/parameter requests for the worker
        self._reset_requested, self._pending_detector, self._pending_tracker = False, None, None
        self._last_stamp: Optional[float] = None
        self._last_frame_id = ""
        self._skipped_since_publish = 0
        self._people = 0
        self._info_mode = "none"
        self._enabled = True
        self._warned = set()
        self._publishers_made = []
        # Input callbacks, services and the diagnostics timer each in their own group: on the
        # MultiThreadedExecutor none of them waits for another (nor for a lifecycle transition).
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        self.create_service(Trigger, "~/reset_tracks", self._on_reset_tracks, callback_group=self._service_group)
        self.create_service(SetBool, "~/enable", self._on_enable, callback_group=self._service_group)
        # A plain publisher: diagnostics also report an unconfigured or inactive node.
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", self._qos("reliable", 10))
        self.create_timer(float(self.p("diagnostics_period")), self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())

    # -- services ------------------------------------------------------------------------
    def _on_reset_tracks(self, request, response):
        # No processor lock: the worker applies the reset before its next frame, so the reply
        # does not wait for a frame in progress.
        with self._requests_lock:
            self._reset_requested = True
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
    def _info_is_valid(self, info) -> bool:
        source = self.p("intrinsics_source")
        if is_uncalibrated(info, source) and float(self.p("camera_info.fallback_hfov_deg")) > 0:
            return True                 # K = 0 is served with fallback intrinsics
        try:
            intrinsics_from_camera_info(info, source)
            return True
        except CameraInfoError:
            return False

    def _on_camera_info(self, msg) -> None:
        self.info_pairing.add(msg)
        self.counters.increment("camera_info_received")

    def _on_detections(self, msg) -> None:
        pair = self.detection_pairing.add_detections(stamp_to_ns(msg.header.stamp), msg)
        if pair is not None:
            self._put(pair)

    def _on_image(self, msg) -> None:
        self.image_rate.tick()
        # Arrival time for staleness; gaps in the stamps count frames lost before the node.
        lost = self.guard.note_arrival(msg.header.stamp.sec, msg.header.stamp.nanosec, self._now())
        if lost:
            self.counters.increment("dropped_upstream", lost)
        if self.detection_pairing is None:
            self._put((msg, None))
            return
        pair = self.detection_pairing.add_image(stamp_to_ns(msg.header.stamp), msg)
        if pair is not None:
            self._put(pair)

    def _put(self, item) -> None:
        with self._slot_lock:
            if self._slot is not None:
                self.counters.increment("overrun")
                self._skipped_since_publish += 1
            self._slot = item
            self._slot_lock.notify()

    def _take(self):
        with self._slot_lock:
            while self._slot is None and not self._stop.is_set():
                self._slot_lock.wait(0.1)
            item, self._slot = self._slot, None
            return item

    def _work(self) -> None:
        last_start = 0.0
        while not self._stop.is_set():
            item = self._take()
            if item is None:
                continue
            max_rate = float(self.p("max_rate"))
            if max_rate > 0:
                time.sleep(max(0.0, last_start + 1.0 / max_rate - time.monotonic()))
            last_start = time.monotonic()
            try:
                with self._frame_lock:
                    if self.image_sub is None:      # deactivated after this image was taken
                        continue
                    self._apply_requests()
                    self._process(*item)
            except Exception as exc:  # noqa: BLE001 - never let one frame stop the node
                count = self.counters.increment("internal_error")
                text = self._error_log.message("internal_error", f"frame failed (internal error #{count}): "
                                               f"{exc}\n{traceback.format_exc(limit=3)}")
                if text:
                    self.get_logger().error(text)

    def _apply_requests(self) -> None:
        """Service and parameter requests, applied by the worker between frames."""
        with self._requests_lock:
            reset, self._reset_requested = self._reset_requested, False
            detector, self._pending_detector = self._pending_detector, None
            tracker, self._pending_tracker = self._pending_tracker, None
        if detector is not None:
            self.processor.detector = detector
        for name, value in (tracker or {}).items():
            setattr(self.processor.tracker, name, value)
        self.processor.settings = self.settings()
        if reset:
            self.processor.reset()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _reject(self, reason: str, message: str) -> None:
        self.counters.increment(reason)
        self._skipped_since_publish += 1
        text = self._reject_log.message(reason, f"skipping frame ({reason}): {message}")
        if text:
            self.get_logger().warning(text)

    def _guard_settings(self) -> GuardSettings:
        return GuardSettings(max_image_age=float(self.p("max_image_age")),
                             max_future_stamp=float(self.p("max_future_stamp")),
                             clock_offset_warn=float(self.p("clock_offset_warn")),
                             expected_rate=float(self.p("expected_rate")))

    def _warn_once(self, key, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(message)

    def _output_frame(self, msg) -> Optional[str]:
        """The optical frame every output is expressed in, or None when there is none."""
        frame = self.p("camera_frame_id") or msg.header.frame_id
        if frame and "optical" not in frame:
            self._warn_once(("frame", frame), (
                f"frame_id '{frame}' does not look like an optical frame (REP-103: z forward, x right, "
                "y down); every output is expressed in it as if it were. If the camera driver uses "
                "another frame, set the parameter camera_frame_id to its optical frame"))
        return frame or None

    def _process(self, msg, upstream) -> None:
        if not self._enabled:
            self.counters.increment("paused")
            return
        stamp = stamp_seconds(msg.header.stamp)
        # Stamp policy (input_guard): staleness from arrival, bad stamps rejected, a time-base
        # change resets the tracks only once confirmed (one bad stamp never moves the stream).
        self.guard.settings = self._guard_settings()
        verdict = self.guard.check(msg.header.stamp.sec, msg.header.stamp.nanosec, self._now())
        if verdict.warning:
            text = self._clock_log.message("clock", verdict.warning)
            if text:
                self.get_logger().warning(text)
        if verdict.action == "reject":
            if verdict.reason == "stale":       # the node is behind, not bad input
                self.counters.increment("stale")
                self._skipped_since_publish += 1
                text = self._reject_log.message("stale", f"skipping frame (stale): {verdict.message}")
                if text:
                    self.get_logger().warning(text)
            else:
                self._reject(verdict.reason, verdict.message)
            return
        if verdict.action == "reset":
            self.counters.increment("stamp_reset")
            self.get_logger().warning(f"{verdict.message}; resetting tracks")
            self.processor.reset()
        frame = self._output_frame(msg)
        if frame is None:
            self._reject("no_frame_id", "the image's header.frame_id is empty and every output would be "
                         "in no frame; fix the camera driver's frame_id or set the parameter camera_frame_id")
            return
        size = (msg.width, msg.height) if hasattr(msg, "width") else None
        info, self._info_mode = self.info_pairing.lookup(
            msg.header.stamp, msg.header.frame_id, image_size=size,
            allow_latest=bool(self.p("camera_info.allow_latest")))
        if info is None and self.info_pairing.received == 0:
            self._warn_once("no_info", f"no CameraInfo ever received on {self.resolve_topic_name('camera_info')}: "
                            "frames are skipped until one comes (remap camera_info to the camera's topic)")
        msg.header.frame_id = frame
        detections = None
        if upstream is not None:
            from ..detection.detection2d import boxes_from_detection2d_array

            detections = boxes_from_detection2d_array(
                upstream, image_size=size, score_threshold=float(self.p("detector.score_threshold")),
                min_box_height=float(self.p("detector.min_box_height")),
                max_people=int(self.p("detector.max_people")))
        try:
            out = self.processor.process(
                msg, info, want_markers=self.markers_pub.get_subscription_count() > 0,
                want_debug=self.debug_pub.get_subscription_count() > 0, detections=detections,
                want_points=self.points_pub.get_subscription_count() > 0,
                **self.planner.world(frame, stamp))      # camera → world_frame at the stamp (TF)
        except FrameError as exc:
            self._reject(exc.reason, str(exc))
            return
        self._last_stamp, self._last_frame_id = stamp, frame
        self.guard.commit(msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.counters.increment("processed")
        for warning in out.warnings:
            self.get_logger().warning(warning)
        self._publish_outputs(out, stamp)

    def _publish_outputs(self, out, stamp: float) -> None:
        t = time.perf_counter()
        out.bodies.frames_skipped = self._skipped_since_publish
        out.bodies.latency = float(self._now() - stamp)
        self.bodies_pub.publish(out.bodies.serialize())        # CDR bytes (body_array.py)
        if out.transforms:
            self.tf_pub.publish(out.transforms.serialize())     # CDR bytes: ~0.1 ms, not ~2
        if out.markers is not None and len(out.markers):
            self.markers_pub.publish(out.markers.serialize())   # CDR bytes (marker_cdr.py)
        if out.debug_image is not None:
            self.debug_pub.publish(out.debug_image)
        if out.body_points is not None:                        # CDR bytes where it is a bundle (body_points.py)
            points = out.body_points
            self.points_pub.publish(points.serialize() if hasattr(points, "serialize") else points)
        # Extra outputs (publishers made in _init_publishers) are published here, from `out`.
        self.planner.publish(out)        # ~/people, REP-155, forecasts (planner_outputs.py)
        out.timings["publish"] = time.perf_counter() - t
        out.timings["end_to_end"] = self._now() - stamp
        self.latency.add_many(out.timings)
        self._skipped_since_publish = 0
        self._people = out.people
        self.counters.increment("published")
        self.output_rate.tick()

    def _delete_markers(self) -> None:
        """Remove this node's markers from RViz now (deactivate), not only when they expire."""
        if self._last_frame_id and self.markers_pub.get_subscription_count() > 0:
            header = Image().header
            header.frame_id, header.stamp = self._last_frame_id, self.get_clock().now().to_msg()
            self.markers_pub.publish(MarkerArray(markers=delete_all(header)))

    # -- diagnostics ---------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        self.diag_pub.publish(build_diagnostics(self))

    def shutdown(self) -> None:
        self._stop.set()
        with self._slot_lock:
            self._slot_lock.notify_all()
        if self._worker is not None and self._worker is not threading.current_thread():
            # The worker stops after its current frame; a CPU frame on a loaded machine can take
            # tens of seconds, and releasing the processor and publishers under it would make
            # that frame fail with a traceback.
            self._worker.join(timeout=SHUTDOWN_WAIT)
            if self._worker.is_alive():
                self.get_logger().error(f"the worker is still inside a frame after {SHUTDOWN_WAIT:.0f} s; "
                                        "releasing the pipeline anyway")
        self._worker = None


def main(argv=None) -> int:
    rclpy.init(args=argv)
    logger = rclpy.logging.get_logger("pare_node")
    try:
        node = PareNode()
    except StartupError as exc:
        logger.fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    if node.p("autostart"):
        # Like yolo_ros: configure + activate here, so a plain `ros2 run` just works.
        if node.trigger_configure() != SUCCESS or node.trigger_activate() != SUCCESS:
            logger.fatal(f"cannot start: {node.startup_error or 'a lifecycle transition failed'}")
            node.shutdown()
            node.destroy_node()
            rclpy.try_shutdown()
            return 1
    return spin_until_shutdown(node, on_exit=node.shutdown, executor=MultiThreadedExecutor(num_threads=4))


if __name__ == "__main__":
    sys.exit(main())
