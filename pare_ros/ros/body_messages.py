"""BodyEstimate → pare_ros/SmplBody and the per-image SmplBodyArray (msg/*.msg).

:func:`body_columns` computes every field of all people of a frame as [P, ...] arrays
(:class:`BodyColumns`); the node serialises those directly (:mod:`.body_array`), and
:func:`body_msgs` makes message objects from them where objects are wanted. Arrays are handed to
rclpy as NumPy float32 rows of the exact declared length (fixed-size fields are stored as given)
and as ``array('f')`` built from bytes (unbounded fields), so no per-element Python work happens
even for the 20 670 vertex floats.
"""
from __future__ import annotations

import array
import functools
from dataclasses import dataclass
from math import isfinite
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .message_builders import bulk_builder
from .tf_frames import LEFT_HIP, REP_TO_SMPL, RIGHT_HIP, quaternions_xyzw

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


def _rows(values: Sequence, name: str, size: int, dtype=np.float32) -> np.ndarray:
    """[P, size] from P per-body values, in one conversion (raises on a wrong count). Rows of
    the float32 result are contiguous arrays of exactly the declared length, as the message
    stores them."""
    try:
        out = np.array(values, dtype=dtype)
        if out.ndim != 2:                           # e.g. (24, 3) per body
            out = out.reshape(len(values), -1)
    except ValueError as exc:                       # ragged: a body with a wrong shape
        raise ValueError(f"{name}: expected {size} values per body ({exc})") from None
    if out.shape[1] != size:
        raise ValueError(f"{name}: expected {size} values per body, got {out.shape[1]}")
    return out


def _stack(bodies: Sequence, name: str, size: int, dtype=np.float32) -> np.ndarray:
    """:func:`_rows` of the attribute ``name`` of every body."""
    return _rows([getattr(b, name) for b in bodies], name, size, dtype)


def _joint_confidences(bodies, joints3d: np.ndarray, joints2d: np.ndarray, visibility: np.ndarray, track_views,
                       image_size, given) -> np.ndarray:
    """[P,24] float64: :func:`default_joint_confidence` of every body at once (joints3d
    [P,24,3], joints2d [P,48] (x, y per joint), visibility [P,24], float64), rows of ``given``
    (a sequence with (24,) or None per body) replacing it where not None."""
    confidence = np.array([b.score if getattr(v, "confidence", None) is None else v.confidence
                           for b, v in zip(bodies, track_views)], dtype=np.float64)
    inside = joints3d[:, :, 2] > 0
    if image_size is not None:
        # A joint's x and y tests side by side are two bytes, both 1 when it projects inside:
        # read as one uint16 (0x0101), with no reduction over pairs.
        both = (joints2d >= 0) & (joints2d < _image_bounds(tuple(image_size)))         # [P,48]
        inside &= both.view(np.uint16) == 0x0101
    out = confidence[:, None] * visibility * inside
    for i, row in enumerate(given):
        if row is not None:
            out[i] = _rows([row], "joint_confidence", 24, np.float64)[0]
    return out


@functools.lru_cache(maxsize=8)
def _image_bounds(image_size: Tuple[int, int]) -> np.ndarray:
    """(48,) float64: (width, height) for each joint's (x, y)."""
    return np.tile(np.array(image_size, dtype=np.float64), 24)


#: SmplBody's fixed-size float32 fields and their lengths, in declaration order.
FIXED_FIELDS = {"bbox": 4, "crop": 3, "joints_2d": 48, "betas": 10, "global_orient": 3, "body_pose": 69,
                "transl": 3, "cam_crop": 3, "joints_3d": 72, "part_visibility": 24, "joint_confidence": 24}
#: Every float32 value of a SmplBody in wire order: the columns of :attr:`BodyColumns.block`
#: (the CDR writer copies runs of it between the variable-length fields).
BLOCK_FIELDS = {"age": 1, "time_since_update": 1, "detection_score": 1, **FIXED_FIELDS, "truncation": 1}
BLOCK_WIDTH = sum(BLOCK_FIELDS.values())


def _columns(fields: Dict[str, int]) -> Dict[str, slice]:
    """name → its columns, for fields of these sizes laid side by side."""
    out, start = {}, 0
    for name, size in fields.items():
        out[name] = slice(start, start + size)
        start += size
    return out


BLOCK = _columns(BLOCK_FIELDS)            # name → the block's columns
_SCALARS = [BLOCK[n].start for n in ("age", "time_since_update", "detection_score", "truncation")]


@dataclass
class BodyColumns:
    """Every SmplBody field of P people as arrays (row i = person i), computed once per frame
    by :func:`body_columns`; :func:`body_msgs` makes the message objects from them and
    :class:`.body_array.SmplBodyArrayBundle` the CDR bytes."""

    block: np.ndarray                 # [P, BLOCK_WIDTH] float32: every float32 field (BLOCK_FIELDS)
    body_id: List[str]
    track_id: List[int]               # uint32
    tracking_state: List[int]
    root: np.ndarray                  # [P, 7] float64: body_<id> position (x, y, z), orientation (x, y, z, w)
    root_velocity: np.ndarray         # [P, 3] float64 (0 where not valid)
    velocity_valid: List[bool]
    velocity_frame: List[str]
    rotmats: Optional[np.ndarray] = None     # [P, 216] float32, None: the field stays empty
    vertices: Optional[np.ndarray] = None    # [P, 20670] float32, None: the field stays empty

    def __len__(self) -> int:
        return len(self.body_id)

    @property
    def arrays(self) -> Dict[str, np.ndarray]:
        """The fixed-size fields (FIXED_FIELDS) as [P, n] views of :attr:`block`."""
        return {name: self.block[:, BLOCK[name]] for name in FIXED_FIELDS}

    @property
    def scalars(self) -> np.ndarray:
        """[P, 4] float32: age, time_since_update, detection_score, truncation."""
        return self.block[:, _SCALARS]


def body_columns(bodies: Sequence, track_views: Optional[Sequence] = None,
                 publish_rotmats: bool = False, publish_vertices: bool = False,
                 image_size: Optional[Tuple[int, int]] = None,
                 velocities: Optional[Sequence] = None, velocity_frame: str = "",
                 joint_confidences: Optional[Sequence] = None, roots: Optional[np.ndarray] = None) -> BodyColumns:
    """The SmplBody fields of all people of a frame at once: one array conversion per field,
    root poses and joint confidences in one NumPy pass. Args: see :func:`smpl_body_msgs`;
    ``roots``: [P,7] root poses already computed with the TF frames
    (:func:`.tf_frames.body_roots`), else computed here."""
    p = len(bodies)
    views = [None] * p if track_views is None else list(track_views)
    velocities = [None] * p if velocities is None else list(velocities)
    if p == 0:
        return BodyColumns(np.zeros((0, BLOCK_WIDTH), np.float32), [], [], [], np.zeros((0, 7)), np.zeros((0, 3)),
                           [], [], np.zeros((0, 216), np.float32) if publish_rotmats else None,
                           np.zeros((0, 20670), np.float32) if publish_vertices else None)
    joints3d = _stack(bodies, "joints3d", 72, np.float64)                 # float64 for the tests below
    joints2d = _stack(bodies, "joints2d", 48, np.float64)
    visibility = _stack(bodies, "part_visibility", 24, np.float64)
    # Each field converted once (checked), then stored (float64 ones rounded) into its columns.
    block = np.empty((p, BLOCK_WIDTH), np.float32)
    tracked = [v is not None for v in views]
    scalars = np.array(
        [[float(v.age) if t else 0.0 for v, t in zip(views, tracked)],
         [float(v.time_since_update) if t else 0.0 for v, t in zip(views, tracked)],
         [b.score if v is None or getattr(v, "score", None) is None else v.score for b, v in zip(bodies, views)],
         [b.truncation for b in bodies]], dtype=np.float32)                                # [4, P]
    block[:, :3], block[:, -1] = scalars[:3].T, scalars[3]            # the block's first three and last columns
    block[:, BLOCK["bbox"]] = _stack(bodies, "box", 4)
    block[:, BLOCK["crop"]] = _rows([(b.crop.cx, b.crop.cy, b.crop.side) if hasattr(b.crop, "cx") else b.crop
                                     for b in bodies], "crop", 3)
    block[:, BLOCK["joints_2d"]] = joints2d
    block[:, BLOCK["betas"]] = _stack(bodies, "betas", 10)
    block[:, BLOCK["global_orient"].start:BLOCK["body_pose"].stop] = _stack(bodies, "axis_angle", 72)
    block[:, BLOCK["transl"]] = _stack(bodies, "transl", 3)
    block[:, BLOCK["cam_crop"]] = _stack(bodies, "cam_crop", 3)
    block[:, BLOCK["joints_3d"]] = joints3d
    block[:, BLOCK["part_visibility"]] = visibility
    joints3d = joints3d.reshape(p, 24, 3)
    block[:, BLOCK["joint_confidence"]] = _joint_confidences(
        bodies, joints3d, joints2d, visibility, views, image_size,
        [None] * p if joint_confidences is None else joint_confidences)
    if roots is None:       # root pose of body_<id> (REP-155): origin mid-hips, orientation R_root · M
        rotmats0 = np.array([np.asarray(b.rotmats)[0] for b in bodies], dtype=np.float64)
        roots = np.concatenate((0.5 * (joints3d[:, LEFT_HIP] + joints3d[:, RIGHT_HIP]),
                                quaternions_xyzw(rotmats0 @ REP_TO_SMPL)), axis=1)
    has_velocity = [v is not None for v in velocities]
    velocity = np.array([np.asarray(v, dtype=np.float64).reshape(3) if h else (0.0, 0.0, 0.0)
                         for v, h in zip(velocities, has_velocity)])
    # Finiteness of a few 3-vectors: cheaper in Python than NumPy's per-call cost.
    finite = [isfinite(x) and isfinite(y) and isfinite(z) for x, y, z in velocity.tolist()]
    return BodyColumns(
        block,
        body_id=[str(v.body_id) if t else "" for v, t in zip(views, tracked)],
        track_id=[int(v.track_id) & 0xFFFFFFFF if t else 0 for v, t in zip(views, tracked)],
        tracking_state=[int(v.state) if t else TRACK_CONFIRMED for v, t in zip(views, tracked)],
        root=np.asarray(roots, dtype=np.float64).reshape(p, 7), root_velocity=velocity,
        velocity_valid=[h and f for h, f in zip(has_velocity, finite)],
        velocity_frame=[str(velocity_frame) if h else "" for h in has_velocity],
        rotmats=_checked(bodies, "rotmats", (24, 3, 3)) if publish_rotmats else None,
        vertices=_checked(bodies, "vertices", (6890, 3)) if publish_vertices else None)


def _checked(bodies, name: str, shape: tuple) -> np.ndarray:
    """[P, prod(shape)] float32 of an optional array field, row-major (root first)."""
    values = [np.asarray(getattr(b, name), dtype=np.float32) for b in bodies]
    for value in values:
        if value.shape != shape:
            raise ValueError(f"{name} must be {shape}, got {value.shape}")
    return np.array(values).reshape(len(values), -1)


def body_msgs(columns: BodyColumns) -> list:
    """pare_ros/SmplBody objects from :class:`BodyColumns`, filled column-wise without the
    per-field setter checks (:mod:`.message_builders`): a few object constructions per person."""
    from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
    from pare_ros.msg import SmplBody

    p = len(columns)
    if p == 0:
        return []
    fields = {name: list(rows) for name, rows in columns.arrays.items()}   # contiguous float32 row views
    age, since_update, score, truncation = columns.scalars.T.tolist()      # float32-exact Python floats
    make_point, make_quat = bulk_builder(Point, ("x", "y", "z")), bulk_builder(Quaternion, ("x", "y", "z", "w"))
    make_pose, make_vector = bulk_builder(Pose, ("position", "orientation")), bulk_builder(Vector3, ("x", "y", "z"))
    fields.update(
        body_id=columns.body_id, track_id=columns.track_id, tracking_state=columns.tracking_state, age=age,
        time_since_update=since_update, detection_score=score, truncation=truncation,
        root=[make_pose(make_point(*r[:3]), make_quat(*r[3:])) for r in columns.root.tolist()],
        root_velocity=[make_vector(*v) for v in columns.root_velocity.tolist()],
        velocity_valid=columns.velocity_valid, velocity_frame=columns.velocity_frame,
        rotmats=_float_rows(columns.rotmats, p), vertices=_float_rows(columns.vertices, p))
    names = tuple(fields)
    return list(map(bulk_builder(SmplBody, names), *(fields[name] for name in names)))


def _float_rows(values: Optional[np.ndarray], p: int) -> list:
    """An unbounded float32[] field for P messages: array('f') per row, empty ones for None."""
    return [array.array("f") for _ in range(p)] if values is None else [_floats(row) for row in values]


def smpl_body_msgs(bodies: Sequence, track_views: Optional[Sequence] = None,
                   publish_rotmats: bool = False, publish_vertices: bool = False,
                   image_size: Optional[Tuple[int, int]] = None,
                   velocities: Optional[Sequence] = None, velocity_frame: str = "",
                   joint_confidences: Optional[Sequence] = None) -> list:
    """All people of a frame as pare_ros/SmplBody messages (:func:`body_columns`, then
    :func:`body_msgs`).

    Args are :func:`smpl_body_msg`'s, one entry per body: ``track_views`` [P] (None entries:
    untracked), ``velocities`` [P] ((3,) or None), ``joint_confidences`` [P] ((24,) or None:
    :func:`default_joint_confidence` with ``image_size``).
    """
    return body_msgs(body_columns(bodies, track_views, publish_rotmats, publish_vertices, image_size,
                                  velocities, velocity_frame, joint_confidences))


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

    make = bulk_builder(SmplBodyArray, ("header", "image_width", "image_height", "intrinsics", "smpl_model",
                                        "estimator", "latency", "frames_skipped", "bodies"))
    values = intrinsics.as_tuple() if hasattr(intrinsics, "as_tuple") else intrinsics
    width, height = (int(v) for v in image_size)
    if not (0 <= width < 2 ** 32 and 0 <= height < 2 ** 32 and 0 <= int(frames_skipped) < 2 ** 32):
        raise ValueError(f"image size {image_size} / frames_skipped {frames_skipped} out of uint32 range")
    return make(header, width, height, _fixed(values, 4, np.float64), str(smpl_model), str(estimator),
                _f32(latency), int(frames_skipped), list(bodies))
