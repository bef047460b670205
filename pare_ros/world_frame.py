"""Tracking in a fixed frame, and the per-frame summary that planners read.

The node estimates every body in the camera optical frame. On a robot that drives or turns its
head, a person standing still then moves in that frame, and a velocity measured there contains
the robot's own motion. So, given the camera → world transform at the image stamp (from TF),
each estimate's parameters are mapped into the world frame *before* smoothing
(:func:`move_smpl_params`), smoothed and differentiated there, and mapped back (the same with
the inverse transform) so that the camera-frame outputs (SmplBody, TF, markers, 2D) stay
consistent with the image. :func:`estimate_in_frame` does the same for a whole BodyEstimate.

SMPL detail: smplx places a body as ``R·(v − J0) + J0 + transl`` (J0 = the shaped rest pelvis),
so a rigid map ``T = (Rw, tw)`` changes the root rotation to ``Rw·R`` and the translation to
``Rw·(J0 + transl) + tw − J0`` (not ``Rw·transl + tw``); body-pose rotations are parent-relative
and do not change.

:class:`PlannerFrame` is what :mod:`pare_ros.ros.planner_outputs` publishes: per track the root
(REP-155 ``body_<id>`` origin, mid-hips) and its velocity in ``frame_id`` — the world frame when
the transform was available, else the camera frame (``fallback`` says why).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List, Optional

import numpy as np
from scipy.spatial.transform import Rotation

from .tf_tree import RigidTransform

_ALL_VISIBLE = np.ones(24)            # part visibility of estimates without one


def _root_pelvis(body) -> np.ndarray:
    """(3,) J0, the rest pelvis of this body's shape (joints3d[0] − transl, root rotation fixes it)."""
    return np.asarray(body.joints3d[0], dtype=np.float64) - np.asarray(body.transl, dtype=np.float64)


def move_smpl_params(transform: RigidTransform, rotmats, transl, rest_pelvis):
    """SMPL parameters of bodies moved rigidly by ``transform``: rotmats [P,24,3,3] (root
    turned), transl [P,3] m, rest_pelvis [P,3] = J0 of each body's shape. Returns (rotmats,
    transl). With ``transform.inverse()`` it maps back."""
    rotmats = np.array(rotmats, dtype=np.float64, copy=True)
    rotmats[:, 0] = transform.rotation @ rotmats[:, 0]
    j0 = np.asarray(rest_pelvis, dtype=np.float64)
    return rotmats, transform.apply(j0 + np.asarray(transl, dtype=np.float64)) - j0


def estimate_in_frame(body, transform: RigidTransform):
    """A copy of a camera-frame ``BodyEstimate`` with rotmats, axis_angle, joints3d and transl
    expressed in the frame ``transform`` maps into (the fields the smoother reads; vertices and
    keypoints are left in the camera frame and must not be used from the copy)."""
    rw = transform.rotation
    rotmats = np.array(body.rotmats, dtype=np.float64, copy=True)
    rotmats[0] = rw @ rotmats[0]
    axis_angle = np.array(body.axis_angle, dtype=np.float64, copy=True)
    axis_angle[0] = Rotation.from_matrix(rotmats[0]).as_rotvec()
    j0 = _root_pelvis(body)
    transl = transform.apply(j0 + np.asarray(body.transl, dtype=np.float64)) - j0
    return replace(body, rotmats=rotmats, axis_angle=axis_angle, joints3d=transform.apply(body.joints3d),
                   transl=transl)


@dataclass
class PlannerTrack:
    """One live track for planners.

    position (3,) m: root (mid-hips) in ``PlannerFrame.frame_id``; velocity (3,) m/s there, or
    None before the smoother has two estimates; reliability [0,1]: detection score × mean part
    visibility (0 while coasting); confirmed: CONFIRMED or COASTING (not TENTATIVE, not LOST).
    box (4,) px xyxy; keypoints2d (49,2) px (PARE's keypoints, OpenPose BODY_25 first);
    keypoint_conf (49,) [0,1]; body_offsets (M,3) m: decimated mesh vertices − root, in the
    frame's axes (for swept regions), or None.
    """

    track_id: int
    body_id: str
    state: int
    confirmed: bool
    position: np.ndarray
    velocity: Optional[np.ndarray]
    reliability: float
    box: np.ndarray
    keypoints2d: np.ndarray
    keypoint_conf: np.ndarray
    body_offsets: Optional[np.ndarray] = None
    velocity_cov: Optional[np.ndarray] = None      # (3,3) (m/s)² of ``velocity``, when the smoother gives one


@dataclass
class PlannerFrame:
    """stamp (image stamp, s); frame_id: frame of every position/velocity; camera_frame: the
    image's optical frame; image_size (w, h) px; fallback: why the world frame was not used
    ('' when it was, or when no world frame is configured)."""

    stamp: float
    frame_id: str
    camera_frame: str
    image_size: tuple
    tracks: List[PlannerTrack] = field(default_factory=list)
    fallback: str = ""


def planner_frame(people, velocities, stamp: float, camera_frame: str, image_size, transform=None,
                  world_frame: str = "", fallback: str = "", offsets_stride: int = 0,
                  velocity_covs=None) -> PlannerFrame:
    """Summarise the published people. ``people``: [(TrackView, BodyEstimate camera frame)];
    ``velocities``: track_id → (3,) m/s in the world (when ``transform`` is given) or camera
    frame, or None. ``transform``: camera → world RigidTransform at the stamp, or None (camera
    frame). ``offsets_stride`` > 0 fills ``body_offsets`` with every n-th mesh vertex.

    Positions, reliabilities and keypoint confidences are computed for all P people at once;
    each track's arrays are rows of those [P, ...] arrays."""
    out = PlannerFrame(float(stamp), world_frame if transform is not None else camera_frame, camera_frame,
                       tuple(image_size), fallback=fallback)
    if not people:
        return out
    views = [view for view, _ in people]
    bodies = [body for _, body in people]
    p = len(bodies)
    w, h = image_size
    roots_cam = np.array([body.joints3d[0] for body in bodies], dtype=np.float64)              # [P,3]
    vis = np.array([getattr(body, "part_visibility", _ALL_VISIBLE) for body in bodies], dtype=np.float64)
    scores = np.array([view.score for view in views], dtype=np.float64)                        # [P]
    states = [int(view.state) for view in views]
    live = np.array([state != 2 for state in states])                                          # not coasting
    # np.mean's own steps (sum, then divide by the count) without its Python wrapper.
    mean_vis = np.add.reduce(vis, axis=1) / vis.shape[1]
    reliability = np.where(live, np.clip(scores * mean_vis, 0.0, 1.0), 0.0).tolist()
    kp = np.array([body.keypoints2d for body in bodies], dtype=np.float64).reshape(p, -1, 2)
    # x and y tests side by side: one uint16, 0x0101 when both pass (no reduction over pairs).
    inside = ((kp >= 0) & (kp < np.array([w, h], dtype=np.float64))).view(np.uint16)[..., 0] == 0x0101  # [P,K]
    conf = np.where(inside & live[:, None], scores[:, None], 0.0)                               # [P,K]
    boxes = np.array([view.box for view in views], dtype=np.float64).reshape(p, 4)
    positions = roots_cam if transform is None else transform.apply(roots_cam)
    # Offsets are turned into the frame's axes (by the identity when it is the camera's).
    axes = None if offsets_stride <= 0 else transform if transform is not None else RigidTransform.identity()
    covs = velocity_covs or {}
    for i, (view, body) in enumerate(people):
        vel = velocities.get(view.track_id)
        offsets = None
        if axes is not None and getattr(body, "vertices", None) is not None:
            offsets = axes.rotate(np.asarray(body.vertices, dtype=np.float64)[::offsets_stride] - roots_cam[i])
        out.tracks.append(PlannerTrack(
            track_id=int(view.track_id), body_id=str(view.body_id), state=states[i],
            confirmed=states[i] in (1, 2), position=positions[i],
            velocity=None if vel is None else np.asarray(vel, dtype=np.float64).reshape(3),
            reliability=reliability[i], box=boxes[i], keypoints2d=kp[i], keypoint_conf=conf[i],
            body_offsets=offsets, velocity_cov=None if vel is None else covs.get(view.track_id)))
    return out

