"""pare_node's parameters: declared with descriptions and ranges in one table, so the node,
the YAML file and the docs stay in sync. ``dynamic`` ones may change at runtime."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    dynamic: bool = False
    range: Optional[Tuple[float, float]] = None
    choices: Optional[Tuple[str, ...]] = None

    @property
    def is_float(self) -> bool:
        return isinstance(self.default, float)

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += f" (one of: {', '.join(self.choices)})"
        # Floats are dynamically typed so that `expected_rate: 30` (an integer in YAML or on the
        # command line) is accepted instead of failing start-up with InvalidParameterTypeException;
        # the node turns integers into floats (coerce) and rejects anything else.
        d = ParameterDescriptor(description=text, read_only=not self.dynamic,
                                dynamic_typing=self.is_float)
        if self.range is not None:
            lo, hi = self.range
            if isinstance(self.default, bool):
                pass
            elif isinstance(self.default, int):
                d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
            else:
                d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi))]
        return d


PARAMETERS = (
    # node
    Param("autostart", True, "configure and activate at start-up (false: wait for a lifecycle "
          "manager, e.g. ros2 lifecycle set /pare_node configure)"),
    # input
    Param("image_transport", "raw", "image input: sensor_msgs/Image on 'image' or "
          "CompressedImage on '<resolved image topic>/compressed' (image_transport's convention)",
          choices=("raw", "compressed")),
    Param("image_qos.reliability", "best_effort", "reliability of the image/camera_info "
          "subscriptions (REP-2003: sensor consumers use best effort)",
          choices=("best_effort", "reliable", "system_default")),
    Param("image_qos.depth", 1, "history depth of the image subscription", range=(1, 100)),
    Param("intrinsics_source", "K", "camera matrix to use: K (raw image) or P (rectified image)",
          choices=("K", "P")),
    Param("camera_info.allow_latest", True, "without an exact stamp match, use the latest "
          "valid CameraInfo of the same frame and size", dynamic=True),
    Param("camera_info.wait", 0.1, "s the worker waits for the CameraInfo with the image's exact "
          "stamp, only while the camera's images and infos are exactly paired", dynamic=True,
          range=(0.0, 5.0)),
    Param("camera_frame_id", "", "optical frame of every output; empty = the image's "
          "header.frame_id (set it when the driver's frame_id is empty or not the optical frame)",
          dynamic=True),
    Param("camera_info.fallback_hfov_deg", 60.0, "deg; horizontal field of view of the guessed "
          "intrinsics used when CameraInfo has K = 0 (uncalibrated driver, e.g. usb_cam without a "
          "calibration file; warned once); 0 = refuse such frames (zero_k)", dynamic=True,
          range=(0.0, 179.0)),
    Param("max_image_age", 0.5, "s a frame may wait in the node (from its arrival to the start of "
          "inference) before it is dropped as stale; measured on arrival, so stamps from another "
          "clock (a bag without --clock) are still served (0 = never)", dynamic=True, range=(0.0, 60.0)),
    Param("max_future_stamp", 5.0, "s; an image stamped further ahead of the node clock is bad "
          "input (stamp_future), never the stream's new time", dynamic=True, range=(0.0, 1e6)),
    Param("clock_offset_warn", 1.0, "s; warn (throttled, with the measured offset and the fix) "
          "when image stamps and the node clock disagree by more (0 = never)", dynamic=True,
          range=(0.0, 1e9)),
    Param("image_limits.max_side", 16384, "px; wider or taller images are refused before decoding "
          "(image_size; OpenCV cannot warp sides above 32767)", dynamic=True, range=(16, 32767)),
    Param("image_limits.max_pixels", 16777216, "pixels (default 4096²); larger images (or compressed headers "
          "claiming more) are refused before decoding (image_size)", dynamic=True,
          range=(256, 1000000000)),
    Param("max_rate", 0.0, "Hz cap on inference; 0 = as fast as possible", dynamic=True,
          range=(0.0, 1000.0)),
    # model
    Param("backend", "auto", "inference backend; auto = TensorRT, else PyTorch CUDA, else ONNX "
          "Runtime (when model.onnx_path exists), else PyTorch CPU (reason logged)",
          choices=("auto", "tensorrt", "torch-cuda", "onnxruntime", "torch-cpu")),
    Param("model.onnx_path", "", "exported PARE ONNX for ONNX Runtime/TensorRT (default: "
          "model/onnx/pare_hrnet_w32.onnx; python -m pare_ros.backends.onnx_export)"),
    Param("model.precision", "fp16", "GPU precision (CPU backends always run fp32)", choices=("fp16", "fp32")),
    Param("model.max_batch", 8, "people per inference call (TensorRT profile / CUDA graph buckets; "
          "CPU backends use at most 4, their measured optimum); more people run in slices", range=(1, 64)),
    Param("model.engine_policy", "never", "missing/stale TensorRT engine: 'never' = refuse with the "
          "build command, 'auto' = build it at start-up (minutes), 'force' = rebuild at every start",
          choices=("never", "auto", "force")),
    Param("device", "cpu", "torch device for the network and SMPL (cpu, cuda, cuda:1)"),
    Param("host_threads", 1, "threads of torch's CPU pool and NumPy's BLAS for the per-frame host "
          "work (crops, SMPL, smoothing); their idle threads spin and take the cores from it (8 people "
          "on 2 cores: p95 18 ms at 1, 64 ms at their defaults). 0 = the libraries' defaults; "
          "backend torch-cpu keeps torch's pool for the network", range=(0, 256)),
    Param("model.dir", "", "model directory (default: $PARE_ROS_MODEL_DIR, else ~/.local/share/pare_ros/model)"),
    Param("model.checkpoint", "", "PARE .ckpt or mmhuman3d .pth (default: first official one found)"),
    Param("model.config", "", "PARE YAML (default: the checkpoint's companion *_config.yaml)"),
    Param("model.allow_untrained", False, "run with untrained weights and the synthetic body "
          "model when files are missing (results meaningless; for demos and tests)"),
    Param("model.box_scale", 1.0, "crop side = box_scale x max(box w, h) (PARE demo 1.0)",
          range=(0.5, 3.0)),
    Param("smpl.model_dir", "", "SMPL files directory (default: model.dir)"),
    Param("smpl.gender", "neutral", "SMPL model variant", choices=("neutral", "male", "female")),
    # people
    Param("detector.kind", "hog", "person detector ('topic': vision_msgs/Detection2DArray on "
          "'detections', matched to images by stamp)", choices=("hog", "yolo", "full_frame", "fixed", "topic")),
    Param("detector.fixed_boxes", "", "kind 'fixed': person boxes 'x0,y0,x1,y1;...' in pixels "
          "(empty: nobody)", dynamic=True),
    Param("detector.topic_queue", 30, "kind 'topic': images kept waiting for the detections with "
          "their stamp (a slower detector needs rate x its latency)", range=(1, 1000)),
    Param("detector.model_path", "", "YOLO ONNX file (default: model/detector/yolov8n.onnx)"),
    Param("detector.score_threshold", 0.1, "lowest person score passed on; boxes below "
          "tracker.high_score only extend existing tracks (ByteTrack's second stage)",
          dynamic=True, range=(0.0, 1.0)),
    Param("detector.nms_iou", 0.45, "non-maximum suppression IoU", dynamic=True, range=(0.0, 1.0)),
    Param("detector.max_people", 8, "at most this many people per image", dynamic=True, range=(1, 64)),
    Param("detector.min_box_height", 48.0, "px; smaller people are ignored", dynamic=True,
          range=(0.0, 10000.0)),
    Param("tracker.high_score", 0.5, "detections at or above this score are matched first and "
          "may start tracks", dynamic=True, range=(0.0, 1.0)),
    Param("tracker.iou_threshold", 0.3, "IoU (predicted box, detection) that always passes the "
          "association gate (with similar box heights)", dynamic=True, range=(0.0, 1.0)),
    Param("tracker.gate", 13.28, "chi-square (4 dof) Mahalanobis gate of the predicted box; it widens "
          "with the time since the last match, so association holds at 3-30 Hz (13.28 = 99 %; 0 = IoU only)",
          dynamic=True, range=(0.0, 1000.0)),
    Param("tracker.min_hits", 3, "matches before a track is confirmed", dynamic=True, range=(1, 100)),
    Param("tracker.max_coast", 0.5, "s an unmatched track is still published (COASTING, last estimate, "
          "confidence decaying) before it becomes LOST (kept, not published)", dynamic=True,
          range=(0.0, 60.0)),
    Param("tracker.max_age", 2.0, "s an unmatched track is kept for re-identification (COASTING, then "
          "LOST) before deletion; a person hidden this long keeps the ID", dynamic=True, range=(0.0, 60.0)),
    Param("tracker.confidence_tau", 0.5, "s, time constant of a coasting track's confidence decay "
          "(scales joint_confidence)", dynamic=True, range=(0.001, 60.0)),
    Param("tracker.id_prefix", "", "prepended to body IDs (multi-camera set-ups)"),
    Param("smoothing.enable", True, "temporal smoothing per track (Kalman root translation, SO(3) "
          "One Euro rotations, forgetting-mean betas; one-frame outliers held back; SMPL re-run on the "
          "result) and root velocity"),
    Param("smoothing.rot_gate_deg", 60.0, "deg; a root rotation change beyond this is held back until "
          "the next frame confirms it (PARE's one-frame front/back flips)", dynamic=True, range=(1.0, 180.0)),
    Param("smoothing.transl_gate", 16.27, "chi-square (3 dof) gate of the root translation innovation; "
          "beyond it an estimate is held back until the next frame confirms it (16.27 = 99.9 %)",
          dynamic=True, range=(1.0, 1000.0)),
    Param("smoothing.betas_half_life", 2.0, "s of observed time after which an estimate's weight in the "
          "betas mean halves", dynamic=True, range=(0.01, 3600.0)),
    # outputs
    Param("publish_tf", True, "broadcast body_<id> and the SMPL joint frames", dynamic=True),
    Param("tf.joint_frames", True, "include the 24 smpl_<joint>_<id> frames", dynamic=True),
    Param("tf.prefix", "smpl_", "joint frame prefix"),
    Param("publish_markers", True, "mesh, skeleton and label markers on ~/markers", dynamic=True),
    Param("markers.mesh", True, "include the TRIANGLE_LIST mesh (about 1 MB per person)", dynamic=True),
    Param("markers.max_rate", 10.0, "Hz cap for mesh markers", dynamic=True, range=(0.01, 1000.0)),
    Param("markers.color_mode", "track", "mesh colours", dynamic=True, choices=("track", "visibility")),
    Param("markers.alpha", 1.0, "mesh alpha (<1 disables depth writes in RViz)", dynamic=True,
          range=(0.0, 1.0)),
    Param("markers.lifetime", 2.0, "s markers live in RViz without an update (they vanish when the "
          "node pauses or dies); keep above the frame period and 1/markers.max_rate", dynamic=True,
          range=(0.0, 3600.0)),
    Param("publish_debug_image", False, "mesh overlay on ~/debug_image (only while subscribed)",
          dynamic=True),
    Param("publish_body_points", True, "all people's mesh vertices with their track IDs as a "
          "PointCloud2 on ~/body_points (only while subscribed)", dynamic=True),
    Param("body_points.stride", 1, "publish every n-th vertex on ~/body_points; in frames without another "
          "mesh consumer (mesh markers due, publish_vertices, debug image) SMPL skins only those vertices "
          "(8 people, 2 cores: 28 -> 19 ms a frame at n = 10)", dynamic=True,
          range=(1, 1000)),
    Param("publish_rotmats", False, "fill SmplBody.rotmats", dynamic=True),
    Param("publish_vertices", False, "fill SmplBody.vertices", dynamic=True),
    Param("expected_rate", 10.0, "Hz; rate diagnostics warn below 80 % of it", dynamic=True,
          range=(0.01, 1000.0)),
    Param("output_qos.reliability", "reliable", "reliability of ~/bodies, ~/markers, "
          "~/debug_image and ~/body_points", choices=("reliable", "best_effort")),
    Param("output_qos.depth", 10, "history depth of ~/bodies (the other outputs keep 1)", range=(1, 1000)),
    Param("diagnostics_period", 1.0, "s between /diagnostics messages", range=(0.1, 60.0)),
    # planners (docs/planners.md)
    Param("world_frame", "", "fixed frame (e.g. odom, map) to track, smooth and estimate velocity "
          "in, from TF at each image stamp; empty = the camera optical frame"),
    Param("tf_lookup.timeout", 0.05, "s the worker waits for the camera -> world_frame transform "
          "at the image stamp before falling back to the camera frame", dynamic=True, range=(0.0, 5.0)),
    Param("tf_lookup.max_extrapolation", 0.1, "s the built-in TF buffer (used when tf2_ros is not "
          "installed) may continue the last motion past the newest transform", range=(0.0, 1.0)),
    Param("tf_lookup.cache_time", 10.0, "s of TF history kept", range=(1.0, 600.0)),
    Param("people.enable", True, "people_msgs/People on ~/people (Nav2 social layers)"),
    Param("rep155.enable", True, "REP-155 /humans/bodies/tracked and per-body roi, skeleton2d, "
          "velocity, forecast"),
    Param("publish_planner_markers", True, "velocity arrows and forecast paths on ~/planner_markers "
          "(only while subscribed)"),
    Param("forecast.horizon", 1.5, "s of root forecast per person", dynamic=True, range=(0.0, 10.0)),
    Param("forecast.step", 0.1, "s between forecast points", dynamic=True, range=(0.01, 5.0)),
    Param("forecast.still_speed", 0.4, "m/s; slower people are forecast standing (their velocity "
          "is mostly estimation noise)", dynamic=True, range=(0.0, 5.0)),
    Param("forecast.still_sigmas", 1.5, "people whose speed is below this many standard deviations "
          "of its estimate (the smoother's velocity covariance) are forecast standing (0 = off)",
          dynamic=True, range=(0.0, 10.0)),
    Param("forecast.points_stride", 100, "mesh-vertex stride of the forecast swept region on "
          "~/forecast_points (0 = roots only)", dynamic=True, range=(0, 6890)),
)

BY_NAME = {p.name: p for p in PARAMETERS}


def coerce(name: str, value: Any) -> Any:
    """``value`` as the type of parameter ``name``'s default: an integer for a float parameter
    becomes a float. Raises ValueError (naming the parameter) for another type or out of range."""
    param = BY_NAME.get(name)
    if param is None or not param.is_float:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if param.range is not None and not param.range[0] <= value <= param.range[1]:
        raise ValueError(f"{name} must be in [{param.range[0]}, {param.range[1]}], got {value}")
    return value


def check_choice(name: str, value: Any) -> Optional[str]:
    """Reason to reject ``value`` for parameter ``name``, or None."""
    param = BY_NAME.get(name)
    if param is not None and param.choices and value not in param.choices:
        return f"{name} must be one of {param.choices}, got {value!r}"
    return None
