"""pare_node's parameter handling: a snapshot of the values the worker reads, integer→float
coercion for float parameters, validation, and detector/tracker rebuilds handed to the worker.

A mixin of :class:`~pare_ros.ros.node.PareNode` (it uses the node's ``_values``,
``_requests_lock``, ``processor``, ``info_pairing`` and logger).
"""
from __future__ import annotations

from rclpy.parameter import Parameter
from rcl_interfaces.msg import SetParametersResult

from .frame_types import ProcessorSettings
from .image_conversion import ImageLimits
from .parameters import BY_NAME, check_choice, coerce
from .pipeline_factory import make_detector, tracker_params


class NodeParameters:
    def p(self, name: str):
        return self._values[name]

    def settings(self) -> ProcessorSettings:
        return ProcessorSettings(
            publish_tf=self.p("publish_tf"), joint_frames=self.p("tf.joint_frames"),
            tf_prefix=self.p("tf.prefix"), publish_markers=self.p("publish_markers"),
            markers_mesh=self.p("markers.mesh"), markers_max_rate=self.p("markers.max_rate"),
            markers_color_mode=self.p("markers.color_mode"), markers_alpha=self.p("markers.alpha"),
            markers_lifetime=self.p("markers.lifetime"),
            publish_debug_image=self.p("publish_debug_image"),
            publish_body_points=self.p("publish_body_points"), body_points_stride=self.p("body_points.stride"),
            publish_rotmats=self.p("publish_rotmats"), publish_vertices=self.p("publish_vertices"),
            intrinsics_source=self.p("intrinsics_source"),
            fallback_hfov_deg=float(self.p("camera_info.fallback_hfov_deg")),
            image_limits=ImageLimits(max_side=int(self.p("image_limits.max_side")),
                                     max_pixels=int(self.p("image_limits.max_pixels"))))

    @staticmethod
    def _coerce_parameters(params):
        """Pre-set callback: `ros2 param set /pare_node expected_rate 30` sets a float."""
        return [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
                if p.name in BY_NAME and BY_NAME[p.name].is_float and p.type_ == Parameter.Type.INTEGER
                else p for p in params]

    def _on_set_parameters(self, params) -> SetParametersResult:
        try:
            values = {param.name: coerce(param.name, param.value) for param in params}
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        for name, value in values.items():
            problem = check_choice(name, value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        previous = dict(self._values)
        self._values.update(values)
        detector = tracker = None
        try:
            # Build a new detector (a new ONNX Runtime session for YOLO) only when needed, here
            # and not in the worker; the worker swaps it in before its next frame.
            if self.processor is not None and any(n.startswith("detector.") for n in values):
                detector = make_detector(self)
            if any(n.startswith("tracker.") for n in values):
                tracker = tracker_params(self)
        except ValueError as exc:
            self._values = previous
            return SetParametersResult(successful=False, reason=str(exc))
        with self._requests_lock:
            self._pending_detector = detector or self._pending_detector
            self._pending_tracker = tracker or self._pending_tracker
        self.info_pairing.wait = float(self.p("camera_info.wait"))
        self.get_logger().info("parameters updated: " + ", ".join(f"{p.name}={p.value!r}" for p in params))
        return SetParametersResult(successful=True)
