"""pare_node's lifecycle transitions and the publishers/subscriptions they create.

A mixin of :class:`~pare_ros.ros.node.PareNode` (a ``LifecycleNode``):

* configure: validate, load the model (missing files → FAILURE with the exact path logged),
  create the output publishers, start the worker;
* activate: enable the lifecycle publishers, subscribe to the camera;
* deactivate: unsubscribe, drop the buffered frame, delete the markers, disable publishers;
* cleanup / shutdown: stop the worker, destroy publishers and subscriptions, drop the model.

rclpy swallows exceptions raised inside transition callbacks (they only become ERROR), so
:meth:`_transition` logs them.
"""
from __future__ import annotations

import threading
import traceback

from rclpy.lifecycle import LifecyclePublisher, TransitionCallbackReturn
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_system_default)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from tf2_msgs.msg import TFMessage

from ..msg import SmplBodyArray
from .detection_pairing import DetectionPairing
from .pipeline_factory import StartupError, build_processor
from .tf_lookup import TF_QOS

SUCCESS, FAILURE, ERROR = (TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE,
                           TransitionCallbackReturn.ERROR)


class NodeLifecycle:
    def _transition(self, name: str, action) -> TransitionCallbackReturn:
        """Run a transition; rclpy swallows exceptions raised in transition callbacks, so log
        them here (a StartupError is a clear, expected failure: no traceback)."""
        try:
            action()
            return SUCCESS
        except StartupError as exc:
            self.startup_error = str(exc)
            self.get_logger().error(f"cannot {name}: {exc}")
            return FAILURE
        except Exception as exc:  # noqa: BLE001 - reported, then the state machine handles it
            self.startup_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"{name} failed: {exc}\n{traceback.format_exc()}")
            return ERROR

    def on_configure(self, state) -> TransitionCallbackReturn:
        result = self._transition("configure", self._configure)
        if result == SUCCESS:
            self.lifecycle_state = "inactive"
        return result

    def _configure(self) -> None:
        if self.p("detector.kind") == "topic":
            try:
                import vision_msgs.msg  # noqa: F401
            except ImportError as exc:
                raise StartupError("detector.kind 'topic' needs the vision_msgs package "
                                   "(e.g. apt install ros-$ROS_DISTRO-vision-msgs)") from exc
            self.detection_pairing = DetectionPairing(max_images=int(self.p("detector.topic_queue")))
        self.processor, self.backend_label, self.report = build_processor(self, self.settings())
        self.get_logger().info(self.report.banner())
        if self.report.meaningless:
            self.get_logger().warning("results are MEANINGLESS until the files listed above are provided")
        self._init_publishers()
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="pare_worker", daemon=True)
        self._worker.start()

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)        # enables the lifecycle publishers
        if result == SUCCESS:
            result = self._transition("activate", self._init_subscriptions)
            if result != SUCCESS:
                super().on_deactivate(state)       # back to inactive: publishers off again
        if result == SUCCESS:
            self.lifecycle_state = "active"
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        def deactivate():
            for sub in (self.image_sub, self.info_sub, self.detections_sub):
                if sub is not None:
                    self.destroy_subscription(sub)
            self.image_sub = self.info_sub = self.detections_sub = None
            with self._slot_lock:
                self._slot = None
            with self._frame_lock:       # after the frame in progress, if any (it publishes to them)
                self._delete_markers()
                if getattr(self, "planner", None) is not None:
                    self.planner.reset()     # empty /humans/bodies/tracked, per-body topics removed
        result = self._transition("deactivate", deactivate)
        self.lifecycle_state = "inactive"
        return super().on_deactivate(state) if result == SUCCESS else result

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        result = self._transition("clean up", self._release)
        self.lifecycle_state = "unconfigured"
        return result

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        result = self._transition("shut down", self._release)
        self.lifecycle_state = "finalized"
        return result

    def _release(self) -> None:
        self.shutdown()
        for sub in (self.image_sub, self.info_sub, self.detections_sub):
            if sub is not None:
                self.destroy_subscription(sub)
        self.image_sub = self.info_sub = self.detections_sub = None
        for pub in self._publishers_made:
            if isinstance(pub, LifecyclePublisher):
                self.destroy_lifecycle_publisher(pub)
            else:
                self.destroy_publisher(pub)
        self._publishers_made = []
        if getattr(self, "planner", None) is not None:
            self.planner.destroy()
            self.planner = None
        self.processor, self.backend_label = None, "not configured"

    # -- graph ---------------------------------------------------------------------------
    def _qos(self, reliability: str, depth: int) -> QoSProfile:
        policy = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT,
                  "system_default": qos_profile_system_default.reliability}[reliability]
        return QoSProfile(depth=int(depth), reliability=policy, history=HistoryPolicy.KEEP_LAST,
                          durability=DurabilityPolicy.VOLATILE)

    def _init_publishers(self) -> None:
        """Output publishers, created at configure. Lifecycle publishers drop messages while
        the node is inactive. Extra outputs (people_msgs, REP-155, ...) are created here and
        published in :meth:`_publish_outputs`."""
        out = self.p("output_qos.reliability")
        self.bodies_pub = self.create_lifecycle_publisher(SmplBodyArray, "~/bodies",
                                                          self._qos(out, self.p("output_qos.depth")))
        self.markers_pub = self.create_lifecycle_publisher(MarkerArray, "~/markers", self._qos(out, 1))
        self.debug_pub = self.create_lifecycle_publisher(Image, "~/debug_image", self._qos(out, 1))
        self.points_pub = self.create_lifecycle_publisher(PointCloud2, "~/body_points", self._qos(out, 1))
        self._publishers_made = [self.bodies_pub, self.markers_pub, self.debug_pub, self.points_pub]
        # /tf with tf2_ros TransformBroadcaster's QoS (reliable, volatile, depth 100), our own
        # publisher so that the worker can publish TransformBundle's CDR bytes (no objects).
        self.tf_pub = self.create_publisher(TFMessage, "/tf", TF_QOS)
        self._publishers_made.append(self.tf_pub)
        from .planner_node import PlannerHooks   # world-frame TF lookup, people_msgs, REP-155, forecasts

        self.planner = PlannerHooks(self)

    def _init_subscriptions(self) -> None:
        image_qos = self._qos(self.p("image_qos.reliability"), self.p("image_qos.depth"))
        info_qos = self._qos(self.p("image_qos.reliability"), 10)
        group = self._input_group
        # image_transport's convention: the compressed topic is the *resolved* (remapped) image
        # topic + "/compressed", so `-r image:=/cam/image_raw` alone is enough.
        self.image_topic = self.resolve_topic_name("image")
        if self.p("image_transport") == "compressed":
            topic = self.image_topic.rstrip("/") + "/compressed"
            self.image_sub = self.create_subscription(CompressedImage, topic, self._on_image, image_qos,
                                                      callback_group=group)
        else:
            self.image_sub = self.create_subscription(Image, self.image_topic, self._on_image, image_qos,
                                                      callback_group=group)
        self.info_sub = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, info_qos,
                                                 callback_group=group)
        if self.detection_pairing is not None:
            from vision_msgs.msg import Detection2DArray

            # Best effort matches reliable and best-effort detector publishers alike.
            self.detections_sub = self.create_subscription(
                Detection2DArray, "detections", self._on_detections,
                QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT), callback_group=group)
        self.get_logger().info(f"listening on {self.image_sub.topic_name} and {self.info_sub.topic_name}")
