"""What a frame's processing takes and gives: output settings, the outputs, the frame error.

Shared by :class:`.frame_processor.FrameProcessor` (which re-exports them), ``pare_node`` and
``process_bag``; no pipeline code here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .body_array import SmplBodyArrayBundle
from .image_conversion import DEFAULT_LIMITS, ImageLimits
from .markers import MarkerBundle
from .tf_message import TransformBundle


@dataclass
class ProcessorSettings:
    """Output options; the node updates them at runtime from its parameters."""

    publish_tf: bool = True
    joint_frames: bool = True
    tf_prefix: str = "smpl_"
    publish_markers: bool = True
    markers_mesh: bool = True
    markers_max_rate: float = 10.0
    markers_color_mode: str = "track"
    markers_alpha: float = 1.0
    markers_lifetime: float = 0.0       # s; 0 = until deleted
    publish_debug_image: bool = False
    publish_body_points: bool = True
    body_points_stride: int = 1
    publish_rotmats: bool = False
    publish_vertices: bool = False
    intrinsics_source: str = "K"
    #: accepted image sizes (checked before decoding; compressed: from the file header)
    image_limits: ImageLimits = DEFAULT_LIMITS
    #: horizontal FOV (deg) of the intrinsics used when CameraInfo has K = 0; 0 = refuse
    fallback_hfov_deg: float = 60.0


@dataclass
class FrameOutputs:
    bodies: SmplBodyArrayBundle                      # .serialize() / .to_msg() / .bodies (SmplBody list)
    transforms: TransformBundle = field(default_factory=TransformBundle)   # TF: .serialize() / .to_msgs()
    markers: Optional[MarkerBundle] = None
    debug_image: object = None                       # sensor_msgs/Image
    body_points: object = None                       # PointCloudBundle: .serialize() / .to_msg()
    timings: Dict[str, float] = field(default_factory=dict)
    people: int = 0
    tracks_removed: List[int] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)     # one-time notes for the caller's log
    planner: object = None            # world_frame.PlannerFrame: roots/velocities for planners


class FrameError(ValueError):
    """A frame that cannot be processed; ``reason`` names the diagnostics counter."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9
