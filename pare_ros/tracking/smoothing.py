"""Per-track temporal smoothing of PARE's per-frame estimates.

For each track id a :class:`BodySmoother` keeps:

- **root translation** ``transl`` (3,) m: :class:`.one_euro.OneEuroFilter`;
- **3D joints** ``joints3d`` (24,3) m: One Euro on the joints *relative to the root*
  (``joints3d − transl``), then the smoothed root is added back. The body's displacement is
  thereby the track's prediction for every joint: a joint that leans on its previous estimate
  (below) is carried along with the body instead of lagging behind a walking person;
- **rotations** ``rotmats`` (24,3,3): :class:`.one_euro.SO3OneEuroFilter` (exponential-map
  One Euro on the rotation difference; outputs are always rotations);
- **betas** (10,): the running (optionally weighted) mean over the track, because a person's
  shape does not change while PARE's per-frame estimate of it jitters;
- **root velocity** (3,) m/s: derivative of the smoothed ``transl``, low-passed at
  ``d_cutoff``; the root origin (mid-hips) moves with ``transl`` up to root rotation.

**Visibility.** Joint/part j's filter gets ``s_j = floor + (1 − floor)·v_j``, v_j = PARE's
``part_visibility`` ∈ [0,1] (the same index serves joint j's position and rotation: PARE
regresses joint j from part j's attention), as ``cutoff = s·(min_cutoff + s·beta·speed)``.
A fully visible part keeps the tuned filter; an occluded one (v → 0) gets ``floor`` times the
minimum cutoff (a time constant 1/floor times longer) and floor² times the speed gain, so the
network's guess for a hidden part moves the output only slowly, even when it jumps, and the
output follows the track's prediction (previous relative pose, carried by the smoothed root).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Optional

import numpy as np
from scipy.spatial.transform import Rotation

from .one_euro import OneEuroFilter, SO3OneEuroFilter


@dataclass
class SmoothingParams:
    """Cutoffs in Hz, betas in s/m (positions) or s/rad (rotations)."""

    transl_min_cutoff: float = 1.0
    transl_beta: float = 1.0
    joints_min_cutoff: float = 1.5
    joints_beta: float = 2.0
    rot_min_cutoff: float = 1.5
    rot_beta: float = 0.5
    d_cutoff: float = 1.0
    visibility_floor: float = 0.1


@dataclass
class SmoothedBody:
    """Smoothed fields of one track at one stamp (shapes as in ``BodyEstimate``)."""

    rotmats: np.ndarray          # (24,3,3)
    axis_angle: np.ndarray       # (24,3)
    joints3d: np.ndarray         # (24,3) m
    transl: np.ndarray           # (3,) m
    betas: np.ndarray            # (10,)
    root_velocity: np.ndarray    # (3,) m/s, camera frame
    velocity_valid: bool         # False on a track's first frame
    frames: int                  # estimates fused so far

    def apply_to(self, body, raw_transl: Optional[np.ndarray] = None):
        """A copy of a ``BodyEstimate`` with the smoothed 3D fields. ``vertices`` and
        ``keypoints3d`` are shifted by the translation correction only (re-run SMPL with the
        smoothed parameters for an exactly consistent mesh)."""
        shift = self.transl - np.asarray(body.transl if raw_transl is None else raw_transl)
        fields = dict(rotmats=self.rotmats.astype(np.float32), axis_angle=self.axis_angle.astype(np.float32),
                      joints3d=self.joints3d.astype(np.float32), transl=self.transl.astype(np.float32),
                      betas=self.betas.astype(np.float32))
        for name in ("vertices", "keypoints3d"):
            value = getattr(body, name, None)
            if value is not None:
                fields[name] = (np.asarray(value) + shift).astype(np.float32)
        return replace(body, **fields)


class _TrackState:
    def __init__(self, p: SmoothingParams) -> None:
        self.transl = OneEuroFilter(p.transl_min_cutoff, p.transl_beta, p.d_cutoff)
        self.joints = OneEuroFilter(p.joints_min_cutoff, p.joints_beta, p.d_cutoff)
        self.rot = SO3OneEuroFilter(p.rot_min_cutoff, p.rot_beta, p.d_cutoff)
        self.betas_sum: Optional[np.ndarray] = None
        self.weight_sum = 0.0
        self.frames = 0


class BodySmoother:
    """One smoothing state per track id. ``smooth`` for each new estimate of a track,
    ``drop`` when the track is deleted, ``reset`` to forget everything."""

    def __init__(self, params: Optional[SmoothingParams] = None) -> None:
        self.params = params or SmoothingParams()
        self._tracks: Dict[int, _TrackState] = {}

    def smooth(self, track_id: int, stamp: float, rotmats, joints3d, transl, betas,
               part_visibility=None, weight: float = 1.0) -> SmoothedBody:
        """Fuse one estimate. rotmats (24,3,3), joints3d (24,3) m, transl (3,) m, betas (10,),
        part_visibility (24,) in [0,1] or None (all visible), weight ≥ 0 of these betas in the
        running mean (e.g. detection score × mean visibility), stamp s."""
        p = self.params
        st = self._tracks.get(track_id)
        if st is None or (st.transl.stamp is not None and stamp < st.transl.stamp):
            st = self._tracks[track_id] = _TrackState(p)
        transl = np.asarray(transl, dtype=np.float64).reshape(3)
        joints = np.asarray(joints3d, dtype=np.float64).reshape(-1, 3)
        scale = None
        if part_visibility is not None:
            vis = np.clip(np.nan_to_num(np.asarray(part_visibility, dtype=np.float64).reshape(-1)), 0, 1)
            scale = p.visibility_floor + (1 - p.visibility_floor) * vis

        s_transl = st.transl(transl, stamp)
        s_joints = st.joints(joints - transl, stamp, scale) + s_transl
        s_rot = st.rot(rotmats, stamp, scale)

        betas = np.asarray(betas, dtype=np.float64).reshape(-1)
        w = max(float(weight), 0.0)
        if st.betas_sum is None:
            st.betas_sum, st.weight_sum = np.zeros_like(betas), 0.0
        st.betas_sum += w * betas
        st.weight_sum += w
        mean_betas = st.betas_sum / st.weight_sum if st.weight_sum > 0 else betas.copy()
        st.frames += 1
        return SmoothedBody(
            rotmats=s_rot, axis_angle=Rotation.from_matrix(s_rot).as_rotvec(),
            joints3d=s_joints, transl=s_transl, betas=mean_betas,
            root_velocity=st.transl.velocity.reshape(3).copy(), velocity_valid=st.frames > 1,
            frames=st.frames)

    def smooth_estimate(self, track_id: int, stamp: float, body, weight: Optional[float] = None) -> SmoothedBody:
        """:meth:`smooth` reading a ``BodyEstimate`` (weight default: its detection score)."""
        return self.smooth(track_id, stamp, body.rotmats, body.joints3d, body.transl, body.betas,
                           getattr(body, "part_visibility", None),
                           float(getattr(body, "score", 1.0)) if weight is None else weight)

    def drop(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def reset(self) -> None:
        self._tracks.clear()

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._tracks
