"""pare_node's planner side: the world-frame lookup per image and the planner outputs.

The node creates one :class:`PlannerHooks` at configure (``_init_publishers``), asks
:meth:`PlannerHooks.world` for each image what to pass to ``FrameProcessor.process`` (the camera
→ ``world_frame`` transform at the image stamp, or the reason it is missing), hands every
frame's ``out.planner`` to :meth:`publish`, and adds :meth:`status` to /diagnostics.

Fallback: a missing or too old transform never stalls the node. That frame is tracked in the
camera frame (the smoother restarts in the frame it gets), outputs say so in their frame_id,
a throttled warning names the missing link or the age, and the ``world_frame`` diagnostics
status goes WARN with the counts.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus

from ..tf_tree import TransformError
from ..tracking.forecast import ForecastParams
from .stats import ThrottledLog, diagnostic_status


class PlannerHooks:
    def __init__(self, node) -> None:
        self.node = node
        p = node.p
        self.world_frame = str(p("world_frame")).lstrip("/")
        self.lookup = None
        if self.world_frame:
            from .tf_lookup import TfLookup

            self.lookup = TfLookup(node, cache_time=float(p("tf_lookup.cache_time")),
                                   max_extrapolation=float(p("tf_lookup.max_extrapolation")))
            node.get_logger().info(f"tracking in the fixed frame '{self.world_frame}' "
                                   f"(TF via {self.lookup.backend})")
        from .planner_outputs import PlannerOutputs

        self.outputs = PlannerOutputs(node, self.forecast_params(), people=bool(p("people.enable")),
                                      rep155=bool(p("rep155.enable")), markers=bool(p("publish_planner_markers")),
                                      points_stride=int(p("forecast.points_stride")))
        self.in_world = self.fallbacks = 0
        self.last_error = ""
        self._log = ThrottledLog(5.0)

    def forecast_params(self) -> ForecastParams:
        p = self.node.p
        return ForecastParams(horizon=float(p("forecast.horizon")), step=float(p("forecast.step")),
                              still_speed=float(p("forecast.still_speed")),
                              still_sigmas=float(p("forecast.still_sigmas")))

    def world(self, camera_frame: str, stamp: float) -> dict:
        """Keyword arguments for ``FrameProcessor.process`` for an image of ``camera_frame``
        stamped ``stamp`` s (called from the worker; waits at most ``tf_lookup.timeout``)."""
        offsets = int(self.node.p("forecast.points_stride")) if self.outputs.wants_offsets else 0
        if self.lookup is None:
            return dict(planner_offsets=offsets)
        try:
            transform = self.lookup.lookup(self.world_frame, camera_frame, stamp,
                                           timeout=float(self.node.p("tf_lookup.timeout")))
        except TransformError as exc:
            self.fallbacks += 1
            self.last_error = str(exc)
            text = self._log.message("tf", f"no transform {camera_frame} -> {self.world_frame} at the image stamp "
                                     f"({exc}); this frame is tracked in the camera frame")
            if text:
                self.node.get_logger().warning(text)
            return dict(world_fallback=self.last_error, planner_offsets=offsets)
        self.in_world += 1
        self.last_error = ""
        return dict(world_frame=self.world_frame, world_transform=transform, planner_offsets=offsets)

    def publish(self, out) -> None:
        if out.planner is not None:
            self.outputs.params = self.forecast_params()
            self.outputs.points_stride = int(self.node.p("forecast.points_stride"))
            self.outputs.publish(out.planner)

    def status(self, name: str, hardware_id: str) -> DiagnosticStatus:
        ok, warn = DiagnosticStatus.OK, DiagnosticStatus.WARN
        if not self.world_frame:
            level, msg = ok, "tracking in the camera frame (world_frame not set)"
        elif self.last_error:
            level, msg = warn, f"camera-frame fallback: {self.last_error}"
        elif self.in_world == 0:
            level, msg = ok, f"waiting for images to track in '{self.world_frame}'"
        else:
            level, msg = ok, f"tracking in '{self.world_frame}'"
        return diagnostic_status(f"{name}/world_frame", hardware_id, level, msg, {
            "world_frame": self.world_frame, "tf backend": self.lookup.backend if self.lookup else "",
            "frames in world_frame": self.in_world, "frames in camera frame (fallback)": self.fallbacks,
            "last error": self.last_error})

    def reset(self) -> None:
        self.outputs.reset()

    def destroy(self) -> None:
        self.outputs.destroy()
        if self.lookup is not None:
            self.lookup.destroy()
