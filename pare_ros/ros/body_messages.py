"""BodyEstimate → pare_ros/SmplBody and the per-image SmplBodyArray (msg/*.msg).

Arrays are handed to rclpy as NumPy float32 arrays of the exact declared length (fixed-size
fields are stored as given) and as ``array('f')`` built from bytes (unbounded fields), so no
per-element Python work happens even for the 20 670 vertex floats.
"""
from __future__ import annotations

import array
from typing import Optional, Sequence, Tuple

import numpy as np

from .tf_frames import body_pose

# Values of SmplBody.TRACK_* (kept here so the module imports without the built messages).
TRACK_TENTATIVE, TRACK_CONFIRMED, TRACK_COASTING = 0, 1, 2


def _f32(value) -> float:
    """A Python float already rounded to float32, so a message equals its own round trip."""
    return float(np.float32(value))


def _fixed(values, size: int, dtype=np.float32) -> np.ndarray:
    """Exactly ``size`` values as a fresh contiguous array (raises on a wrong count)."""
    out = np.array(values, dtype=dtype).reshape(-1)
    if out.size != size:
        raise ValueError(f"expected {size} values, got {out.size}")
    return out


def _floats(values) -> array.array:
    """Unbounded float32[] field: array('f') from the bytes (one memcpy)."""
    return array.array("f", np.ascontiguousarray(values, dtype=np.float32).reshape(-1).tobytes())


def default_joint_confidence(body, image_size: Optional[Tuple[int, int]]) -> np.ndarray:
    """(24,) detection_score × part_visibility × (joint projects inside the image and lies in
    front of the camera). Without ``image_size`` (width, height) the inside test is skipped."""
    joints2d = np.asarray(body.joints2d, dtype=np.float64)
    inside = np.asarray(body.joints3d, dtype=np.float64)[:, 2] > 0
    if image_size is not None:
        width, height = image_size
        inside &= ((joints2d[:, 0] >= 0) & (joints2d[:, 0] < width)
                   & (joints2d[:, 1] >= 0) & (joints2d[:, 1] < height))
    visibility = np.asarray(body.part_visibility, dtype=np.float64)
    return float(body.score) * visibility * inside


def smpl_body_msg(body, track_view=None, smoothed=None, publish_rotmats: bool = False,
                  publish_vertices: bool = False,
                  joint_confidence: Optional[np.ndarray] = None,
                  image_size: Optional[Tuple[int, int]] = None,
                  velocity: Optional[Sequence[float]] = None, velocity_frame: str = ""):
    """One person as a pare_ros/SmplBody.

    Args:
        body: BodyEstimate of this image (2D fields, box, crop, score, visibility).
        track_view: tracking info with attributes track_id (int), body_id (str), state
            (0 tentative / 1 confirmed / 2 coasting), age (s), time_since_update (s) and
            optionally score (detection score; default body.score). None: an untracked
            estimate (track_id 0, body_id "", CONFIRMED, age 0).
        smoothed: optional BodyEstimate-like object (e.g. a temporally filtered estimate)
            whose 3D fields (betas, rotmats, axis_angle, transl, joints3d, rest_joints,
            vertices) replace ``body``'s; the root pose is computed from it as well.
        publish_rotmats / publish_vertices: fill the optional ``rotmats`` (216) and
            ``vertices`` (20 670) arrays; otherwise they stay empty.
        joint_confidence: (24,) override; default :func:`default_joint_confidence`.
        image_size: (width, height) for the default joint confidence.
        velocity: (3,) m/s of the root origin in ``velocity_frame``; None → velocity_valid false.
    """
    from pare_ros.msg import SmplBody

    src = smoothed if smoothed is not None else body
    msg = SmplBody()
    if track_view is not None:
        msg.body_id = str(track_view.body_id)
        msg.track_id = int(track_view.track_id) & 0xFFFFFFFF
        msg.tracking_state = int(track_view.state)
        msg.age = _f32(track_view.age)
        msg.time_since_update = _f32(track_view.time_since_update)
        score = getattr(track_view, "score", None)
        msg.detection_score = _f32(body.score if score is None else score)
    else:
        msg.tracking_state = TRACK_CONFIRMED
        msg.detection_score = _f32(body.score)

    msg.bbox = _fixed(body.box, 4)
    crop = body.crop
    msg.crop = _fixed((crop.cx, crop.cy, crop.side) if hasattr(crop, "cx") else crop, 3)
    msg.joints_2d = _fixed(body.joints2d, 48)

    msg.betas = _fixed(src.betas, 10)
    axis_angle = np.asarray(src.axis_angle, dtype=np.float32).reshape(24, 3)
    msg.global_orient = _fixed(axis_angle[0], 3)
    msg.body_pose = _fixed(axis_angle[1:], 69)
    msg.transl = _fixed(src.transl, 3)
    if publish_rotmats:
        rotmats = np.asarray(src.rotmats, dtype=np.float32)
        if rotmats.shape != (24, 3, 3):
            raise ValueError(f"rotmats must be (24,3,3), got {rotmats.shape}")
        msg.rotmats = _floats(rotmats)              # row-major, root first
    msg.cam_crop = _fixed(body.cam_crop, 3)

    msg.joints_3d = _fixed(src.joints3d, 72)
    position, quaternion = body_pose(src)
    msg.root.position.x, msg.root.position.y, msg.root.position.z = (float(v) for v in position)
    (msg.root.orientation.x, msg.root.orientation.y, msg.root.orientation.z,
     msg.root.orientation.w) = (float(v) for v in quaternion)
    if velocity is not None:
        vx, vy, vz = (float(v) for v in np.asarray(velocity, dtype=np.float64).reshape(3))
        msg.root_velocity.x, msg.root_velocity.y, msg.root_velocity.z = vx, vy, vz
        msg.velocity_valid = bool(np.isfinite((vx, vy, vz)).all())
        msg.velocity_frame = velocity_frame
    if publish_vertices:
        vertices = np.asarray(src.vertices, dtype=np.float32)
        if vertices.shape != (6890, 3):
            raise ValueError(f"vertices must be (6890,3), got {vertices.shape}")
        msg.vertices = _floats(vertices)

    msg.part_visibility = _fixed(body.part_visibility, 24)
    if joint_confidence is None:
        joint_confidence = default_joint_confidence(body, image_size)
    msg.joint_confidence = _fixed(joint_confidence, 24)
    msg.truncation = _f32(body.truncation)
    return msg


def smpl_body_array_msg(header, bodies: Sequence, image_size: Tuple[int, int], intrinsics,
                        smpl_model: str, estimator: str, latency: float, frames_skipped: int):
    """The per-image pare_ros/SmplBodyArray (also for an empty list of bodies).

    Args:
        header: the image header (stamp = acquisition time, frame_id = optical frame).
        bodies: SmplBody messages (see :func:`smpl_body_msg`).
        image_size: (width, height) in pixels.
        intrinsics: :class:`pare_ros.camera.Intrinsics` or (fx, fy, cx, cy).
        latency: s from header.stamp to publication; frames_skipped: since the last message.
    """
    from pare_ros.msg import SmplBodyArray

    msg = SmplBodyArray()
    msg.header = header
    msg.image_width, msg.image_height = int(image_size[0]), int(image_size[1])
    values = intrinsics.as_tuple() if hasattr(intrinsics, "as_tuple") else intrinsics
    msg.intrinsics = _fixed(values, 4, np.float64)
    msg.smpl_model = str(smpl_model)
    msg.estimator = str(estimator)
    msg.latency = _f32(latency)
    msg.frames_skipped = int(frames_skipped)
    msg.bodies = list(bodies)
    return msg
