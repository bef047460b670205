"""BodyEstimate → pare_ros/SmplBody and the per-image SmplBodyArray (msg/*.msg).

Arrays are handed to rclpy as NumPy float32 arrays of the exact declared length (fixed-size
fields are stored as given) and as ``array('f')`` built from bytes (unbounded fields), so no
per-element Python work happens even for the 20 670 vertex floats.
"""
from __future__ import annotations

import array
from typing import Optional, Sequence, Tuple

import numpy as np

from .message_builders import bulk_builder
from .tf_frames import body_poses

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


def default_joint_confidence(body, image_size: Optional[Tuple[int, int]],
                             confidence: Optional[float] = None) -> np.ndarray:
    """(24,) confidence × part_visibility × (joint projects inside the image and lies in
    front of the camera). ``confidence``: the track's (a coasting track's decays with the time
    since its last detection, see :class:`pare_ros.tracking.TrackView`); default the
    detection score. Without ``image_size`` (width, height) the inside test is skipped."""
    joints2d = np.asarray(body.joints2d, dtype=np.float64)
    inside = np.asarray(body.joints3d, dtype=np.float64)[:, 2] > 0
    if image_size is not None:
        width, height = image_size
        inside &= ((joints2d[:, 0] >= 0) & (joints2d[:, 0] < width)
                   & (joints2d[:, 1] >= 0) & (joints2d[:, 1] < height))
    visibility = np.asarray(body.part_visibility, dtype=np.float64)
    return float(body.score if confidence is None else confidence) * visibility * inside


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
            optionally score (detection score; default body.score) and confidence (scales
            the joint confidence; default the score). None: an untracked estimate
            (track_id 0, body_id "", CONFIRMED, age 0).
        smoothed: optional BodyEstimate-like object (e.g. a temporally filtered estimate)
            whose 3D fields (betas, rotmats, axis_angle, transl, joints3d, rest_joints,
            vertices) replace ``body``'s; the root pose is computed from it as well.
        publish_rotmats / publish_vertices: fill the optional ``rotmats`` (216) and
            ``vertices`` (20 670) arrays; otherwise they stay empty.
        joint_confidence: (24,) override; default :func:`default_joint_confidence`.
        image_size: (width, height) for the default joint confidence.
        velocity: (3,) m/s of the root origin in ``velocity_frame``; None → velocity_valid false.
    """
    if joint_confidence is None:
        joint_confidence = default_joint_confidence(body, image_size, getattr(track_view, "confidence", None))
    if smoothed is not None:
        body = _Merged(body, smoothed)
    return smpl_body_msgs([body], [track_view], publish_rotmats, publish_vertices,
                          joint_confidences=[joint_confidence], velocities=[velocity],
                          velocity_frame=velocity_frame)[0]


class _Merged:
    """2D/detection fields of ``body`` with the 3D fields of ``smoothed``."""

    _3D = ("betas", "rotmats", "axis_angle", "transl", "joints3d", "rest_joints", "vertices")

    def __init__(self, body, smoothed) -> None:
        self._body, self._smoothed = body, smoothed

    def __getattr__(self, name):
        return getattr(self._smoothed if name in self._3D else self._body, name)


def _rows(bodies, name: str, size: int) -> np.ndarray:
    """[P, size] float32 of one field of every body (raises on a wrong count); each row a
    contiguous float32 array of exactly the declared length, as the message stores it."""
    out = np.array([np.asarray(getattr(b, name), dtype=np.float64).reshape(-1) for b in bodies],
                   dtype=np.float32)
    if out.ndim != 2 or out.shape[1] != size:
        raise ValueError(f"{name}: expected {size} values per body, got shape {out.shape}")
    return out


def smpl_body_msgs(bodies: Sequence, track_views: Optional[Sequence] = None,
                   publish_rotmats: bool = False, publish_vertices: bool = False,
                   image_size: Optional[Tuple[int, int]] = None,
                   velocities: Optional[Sequence] = None, velocity_frame: str = "",
                   joint_confidences: Optional[Sequence] = None) -> list:
    """All people of a frame as pare_ros/SmplBody messages, with every array field computed
    for all P people at once (root poses, joint confidences, float32 conversions) and the
    messages filled without the per-field setter checks (:mod:`.message_builders`).

    Args are :func:`smpl_body_msg`'s, one entry per body: ``track_views`` [P] (None entries:
    untracked), ``velocities`` [P] ((3,) or None), ``joint_confidences`` [P] ((24,) or None:
    :func:`default_joint_confidence` with ``image_size``).
    """
    from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
    from pare_ros.msg import SmplBody

    p = len(bodies)
    if p == 0:
        return []
    track_views = [None] * p if track_views is None else list(track_views)
    velocities = [None] * p if velocities is None else list(velocities)
    confidences = [None] * p if joint_confidences is None else list(joint_confidences)
    confidences = [default_joint_confidence(b, image_size, getattr(view, "confidence", None)) if c is None else c
                   for b, c, view in zip(bodies, confidences, track_views)]
    crops = [(b.crop.cx, b.crop.cy, b.crop.side) if hasattr(b.crop, "cx") else b.crop for b in bodies]
    fields = {
        "bbox": _rows(bodies, "box", 4), "joints_2d": _rows(bodies, "joints2d", 48),
        "betas": _rows(bodies, "betas", 10), "transl": _rows(bodies, "transl", 3),
        "cam_crop": _rows(bodies, "cam_crop", 3), "joints_3d": _rows(bodies, "joints3d", 72),
        "part_visibility": _rows(bodies, "part_visibility", 24),
    }
    fields["crop"] = np.array(crops, dtype=np.float32).reshape(p, -1)
    fields["joint_confidence"] = np.array([np.asarray(c, dtype=np.float64).reshape(-1) for c in confidences],
                                          dtype=np.float32).reshape(p, -1)
    for name, size in (("crop", 3), ("joint_confidence", 24)):
        if fields[name].shape[1] != size:
            raise ValueError(f"{name}: expected {size} values per body, got {fields[name].shape[1]}")
    axis_angle = _rows(bodies, "axis_angle", 72)
    fields["global_orient"], fields["body_pose"] = axis_angle[:, :3], axis_angle[:, 3:]
    positions, quaternions = body_poses(bodies)

    make_point, make_quat = bulk_builder(Point, ("x", "y", "z")), bulk_builder(Quaternion, ("x", "y", "z", "w"))
    make_pose, make_vector = bulk_builder(Pose, ("position", "orientation")), bulk_builder(Vector3, ("x", "y", "z"))
    names = ("body_id", "track_id", "tracking_state", "age", "time_since_update", "detection_score",
             "root", "root_velocity", "velocity_frame", "velocity_valid", "truncation", "rotmats",
             "vertices") + tuple(fields)
    make_body = bulk_builder(SmplBody, names)
    out = []
    for i, (body, view, velocity) in enumerate(zip(bodies, track_views, velocities)):
        v = {name: value[i] for name, value in fields.items()}          # contiguous float32 rows
        if view is not None:
            score = getattr(view, "score", None)
            v.update(body_id=str(view.body_id), track_id=int(view.track_id) & 0xFFFFFFFF,
                     tracking_state=int(view.state), age=_f32(view.age),
                     time_since_update=_f32(view.time_since_update),
                     detection_score=_f32(body.score if score is None else score))
        else:
            v.update(body_id="", track_id=0, tracking_state=TRACK_CONFIRMED, age=0.0, time_since_update=0.0,
                     detection_score=_f32(body.score))
        v["root"] = make_pose(make_point(*positions[i].tolist()), make_quat(*quaternions[i].tolist()))
        if velocity is not None:
            vel = [float(x) for x in np.asarray(velocity, dtype=np.float64).reshape(3)]
            v.update(root_velocity=make_vector(*vel), velocity_valid=bool(np.isfinite(vel).all()),
                     velocity_frame=str(velocity_frame))
        else:
            v.update(root_velocity=make_vector(0.0, 0.0, 0.0), velocity_valid=False, velocity_frame="")
        v["rotmats"] = _checked_floats(body, "rotmats", (24, 3, 3)) if publish_rotmats else array.array("f")
        v["vertices"] = _checked_floats(body, "vertices", (6890, 3)) if publish_vertices else array.array("f")
        v["truncation"] = _f32(body.truncation)
        out.append(make_body(*(v[name] for name in names)))
    return out


def _checked_floats(body, name: str, shape: tuple) -> array.array:
    value = np.asarray(getattr(body, name), dtype=np.float32)
    if value.shape != shape:
        raise ValueError(f"{name} must be {shape}, got {value.shape}")
    return _floats(value)              # row-major, root first


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
