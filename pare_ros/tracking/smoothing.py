"""Per-track temporal smoothing of PARE's SMPL parameters, batched over the people of a frame.

``BodySmoother.update(track_ids [P], stamp, rotmats [P,24,3,3], transl [P,3], betas [P,10])``
smooths the parameters of all P people of one image in one vectorised call; the caller
re-runs SMPL once on the result (joints, mesh and TF then agree exactly; no separate joint
filter). Per track it keeps:

- **root translation** (3,) m: a constant-velocity Kalman filter (state position + velocity,
  white-noise acceleration ``accel_std``). It gives the root velocity *and its covariance*
  and, unlike a One Euro filter, no lag on a constant-velocity walk. Measurement noise is
  anisotropic: ``std_along`` × distance along the viewing ray (PARE's depth comes from the
  size of the body in the crop) and ``std_across`` × distance across it. The smoother is
  frame-agnostic: it filters whatever frame the inputs are in; ``camera_to_person`` [P,3]
  gives the viewing rays in that frame (default: ``transl`` itself, i.e. a frame centred on
  the camera such as the optical frame).
- **rotations** (24): One Euro on SO(3) (:func:`.one_euro.so3_one_euro_step`), with PARE's
  part visibility lowering the cutoff of hidden parts (``s = floor + (1 − floor)·v``).
- **betas** (10): an exponentially forgetting weighted mean (half-life ``betas_half_life``
  s, weights = detection score × mean visibility): noise averages over many frames, but an
  early error or a track that changed person (a tracker error) is forgotten, unlike a
  never-forgetting running mean, which keeps half of a wrong person's shape forever.

**Outliers.** A one-frame error of PARE — a 180° front/back flip of the root, a body placed
a metre too deep — must not reach the output, while a real fast change must. While the
prediction is sharp (largest axis of the innovation covariance S ≤ ``trust_std``: the gate
rejects a metre) an estimate is *suspect* when the root-translation innovation is outside the
Kalman gate (χ²(3) ``gate``) or the root rotation differs from the current estimate by more
than ``rot_gate_deg``. A suspect estimate is held back (the output is the prediction:
translation extrapolated, rotations and betas unchanged) and remembered. If the next estimate
agrees with it the change was real: the track restarts from the pair (position the new
estimate, velocity their difference / Δt), one frame late; otherwise the new one is remembered
instead. *Agree* (:func:`_pair_ok`) is motion-aware: the displacement between the two
estimates, less ``max_speed``·Δt, within the χ²(3) gate of 2R, and the root rotations within
``rot_gate_deg``; so a walker's real jump is taken although the walker moved between the two
held estimates, and two consistent estimates always re-anchor a track (no holding forever).

Where the prediction is too uncertain to gate (S > ``trust_std``²: a new track's second image
at a low rate, the first images after a LOST gap, whose Kalman variance grew with the gap) an
estimate is not trusted alone: it is taken (Kalman update, no gate) only if it agrees with the
last accepted estimate no older than ``pair_window``; else it is held and must be confirmed by
the next one (or the next one agrees with the last accepted). So one outlier on the first image
back after a gap, or on a new track's second image, never re-anchors the state. Only a track not
updated for more than ``gap_reset`` s (3 s: longer than the tracker keeps a lost track by
default) restarts pose and translation from the new estimate; betas are kept, because the ID,
and so the person, is the same. A new track ID always starts fresh.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from .one_euro import so3_one_euro_step
from .so3 import log, nearest_rotation

_EYE3 = np.eye(3)
_EYE6 = np.eye(6)
_VELOCITY_BLOCK = np.kron([[0.0, 1.0], [0.0, 0.0]], _EYE3)     # F(dt) = I + dt·this
# Q(dt) = accel²·[dt³/3, dt²/2, dt] @ this: white-noise acceleration, per axis, flattened [3,36].
_Q_BLOCKS = np.stack([np.kron(b, _EYE3) for b in ([[1.0, 0], [0, 0]], [[0, 1.0], [1.0, 0]],
                                                  [[0, 0], [0, 1.0]])]).reshape(3, 36)


@dataclass
class SmoothingParams:
    """Translation in m and s; cutoffs in Hz, rot_beta in s/rad."""

    std_along: float = 0.02          # × distance, along the viewing ray (PARE's depth)
    std_across: float = 0.005        # × distance, across it
    accel_std: float = 1.0           # m/s² white-noise acceleration density (tuned: tracking_sweep)
    velocity_std: float = 1.0        # m/s, initial velocity uncertainty of a new track
    rot_min_cutoff: float = 1.5
    rot_beta: float = 0.5
    d_cutoff: float = 1.0
    visibility_floor: float = 0.1
    gate: float = 16.27              # χ²(3) 99.9 %: innovation gate of the translation
    rot_gate_deg: float = 60.0       # root rotation change that makes an estimate suspect
    betas_half_life: float = 2.0     # s (10 Hz: ~60 estimates averaged; a wrong shape fades to 3 % in 10 s)
    gap_reset: float = 3.0           # s without an update → the pose restarts (> tracker max_age)
    trust_std: float = 0.25          # m: predicted root std (largest axis of S) above which the
                                     # Kalman gate cannot reject a metre outlier → pairing instead
    max_speed: float = 2.5           # m/s: plausible root speed between two paired estimates
    pair_window: float = 1.0         # s: oldest estimate an estimate may be paired with


@dataclass
class SmoothedBatch:
    """Output of one :meth:`BodySmoother.update` (row i = track_ids[i]).

    rotmats [P,24,3,3] (axis_angle [P,24,3]: computed on access), transl [P,3] m, betas [P,10];
    velocity [P,3] m/s of the root and velocity_cov [P,3,3] (m/s)², in the input frame;
    velocity_valid [P] (False until two estimates since the track (re)started); frames [P]
    estimates fused into the betas;
    held [P]: this frame's estimate was suspect and held back (output = prediction).
    """

    track_ids: np.ndarray
    rotmats: np.ndarray
    transl: np.ndarray
    betas: np.ndarray
    velocity: np.ndarray
    velocity_cov: np.ndarray
    velocity_valid: np.ndarray
    frames: np.ndarray
    held: np.ndarray

    @property
    def axis_angle(self) -> np.ndarray:
        return log(self.rotmats)


class _Store:
    """Dense per-track state, one row per track (rows reused after ``drop``)."""

    FIELDS = dict(x=(6,), P=(6, 6), rot=(24, 3, 3), w=(24, 3), stamp=(), bsum=(10,), wsum=(),
                  frames=(), run=(), pend=(), pend_t=(3,), pend_rot=(24, 3, 3), pend_stamp=(),
                  last_t=(3,), last_stamp=())

    def __init__(self) -> None:
        self.rows: Dict[int, int] = {}
        self.free: List[int] = []
        self.a = {k: np.zeros((0, *s)) for k, s in self.FIELDS.items()}

    def lookup(self, track_ids) -> np.ndarray:
        """Row per id [P] (−1: unknown)."""
        return np.array([self.rows.get(int(t), -1) for t in track_ids], dtype=np.int64)

    def allocate(self, track_id: int) -> int:
        if not self.free:
            n = len(self.a["stamp"])
            grow = max(8, n)
            self.a = {k: np.concatenate([v, np.zeros((grow, *v.shape[1:]))]) for k, v in self.a.items()}
            self.free = list(range(n + grow - 1, n - 1, -1))
        row = self.free.pop()
        self.rows[int(track_id)] = row
        return row

    def drop(self, track_id: int) -> None:
        row = self.rows.pop(int(track_id), None)
        if row is not None:
            self.free.append(row)


class BodySmoother:
    """Smoothing state per track id; ``update`` once per image for all its people,
    ``drop`` when a track is deleted, ``reset`` to forget everything."""

    def __init__(self, params: Optional[SmoothingParams] = None) -> None:
        self.params = params or SmoothingParams()
        self._s = _Store()

    # ----------------------------------------------------------------------------------
    def update(self, track_ids: Sequence[int], stamp: float, rotmats, transl, betas,
               part_visibility=None, weights=None, camera_to_person=None) -> SmoothedBatch:
        """Fuse one estimate per track, all taken at ``stamp`` s.

        track_ids [P] distinct ints; rotmats [P,24,3,3] (projected to the nearest rotation);
        transl [P,3] m; betas [P,10]; part_visibility [P,24] in [0,1] (None: all visible);
        weights [P] ≥ 0 of the betas (None: 1); camera_to_person [P,3] m, the viewing ray
        (None: ``transl``, the input frame is centred on the camera).
        """
        p = self.params
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        n = len(ids)
        rot = nearest_rotation(np.asarray(rotmats, dtype=np.float64).reshape(n, 24, 3, 3))
        z = np.asarray(transl, dtype=np.float64).reshape(n, 3)
        b = np.asarray(betas, dtype=np.float64)
        b = b.reshape(n, b.shape[-1] if b.ndim > 1 else 10)
        ray = z if camera_to_person is None else np.asarray(camera_to_person, dtype=np.float64).reshape(n, 3)
        w = np.ones(n) if weights is None else np.clip(np.asarray(weights, dtype=np.float64).reshape(n), 0, None)
        vis = None if part_visibility is None else np.clip(np.nan_to_num(
            np.asarray(part_visibility, dtype=np.float64).reshape(n, 24)), 0, 1)
        if len(set(ids.tolist())) != n:
            raise ValueError(f"track_ids must be distinct within one update, got {ids.tolist()}")
        if not (np.isfinite(z).all() and np.isfinite(rot).all() and np.isfinite(b).all()):
            raise ValueError("non-finite rotmats/transl/betas: drop those estimates before smoothing")
        stamp = float(stamp)
        s, a = self._s, self._s.a
        rows = s.lookup(ids)
        old = rows >= 0
        if old.any() and (stamp < a["stamp"][rows[old]]).any():
            raise ValueError(f"stamp {stamp:.6f} is older than a track's previous one; drop() or reset() "
                             "the track when time jumps back")
        for i in np.nonzero(~old)[0]:
            rows[i] = s.allocate(ids[i])
        a = s.a                                                 # (re)allocated arrays
        dt = np.where(old, stamp - a["stamp"][rows], np.inf)
        fresh = ~old | (dt > p.gap_reset)
        R, R_inv = _meas_cov(ray, p)                            # [P,3,3] each
        same = old & (dt == 0)                                  # repeated stamp: keep the state
        run = old & ~fresh & ~same
        held = np.zeros(n, dtype=bool)
        if run.any():
            held[run] = self._step(rows[run], dt[run], z[run], rot[run], R[run], R_inv[run],
                                   vis if vis is None else vis[run], stamp)
        if fresh.any():
            self._start(rows[fresh], z[fresh], rot[fresh], R[fresh], stamp, keep_betas=old[fresh])
        a["stamp"][rows[~same]] = stamp
        take = ~held & ~same
        if take.any():                                          # betas: forgetting weighted mean
            r = rows[take]
            # Forgetting runs on observed time: over a gap (a LOST track re-found) no evidence
            # arrived and the person is the same, so the gap counts as at most gap_reset.
            seen = np.minimum(np.where(np.isfinite(dt[take]), dt[take], 0.0), p.gap_reset)
            lam = np.where(np.isfinite(dt[take]), np.exp(-np.log(2) * seen / p.betas_half_life), 0.0)
            wt = w[take] * (1.0 if vis is None else vis[take].mean(1))
            a["bsum"][r, :b.shape[1]] = lam[:, None] * a["bsum"][r, :b.shape[1]] + wt[:, None] * b[take]
            a["wsum"][r] = lam * a["wsum"][r] + wt
            a["frames"][r] += 1
            a["run"][r] += 1
        return self._output(ids, rows, b, held)

    def _start(self, rows, z, rot, R, stamp, keep_betas) -> None:
        p, a = self.params, self._s.a
        a["x"][rows] = np.concatenate([z, np.zeros_like(z)], 1)
        a["P"][rows] = 0.0
        a["P"][rows, :3, :3] = R
        a["P"][rows, 3:, 3:] = p.velocity_std ** 2 * _EYE3
        a["rot"][rows], a["w"][rows], a["pend"][rows], a["run"][rows] = rot, 0.0, 0.0, 0.0
        a["last_t"][rows], a["last_stamp"][rows] = z, stamp
        a["frames"][rows] = np.where(keep_betas, a["frames"][rows], 0)
        a["bsum"][rows] = np.where(keep_betas[:, None], a["bsum"][rows], 0.0)
        a["wsum"][rows] = np.where(keep_betas, a["wsum"][rows], 0.0)

    def _step(self, rows, dt, z, rot, R, R_inv, vis, stamp) -> np.ndarray:
        """Kalman predict/gate/update + SO(3) One Euro for existing tracks; returns held [m]."""
        p, a = self.params, self._s.a
        F = _EYE6 + dt[:, None, None] * _VELOCITY_BLOCK
        Q = p.accel_std ** 2 * (np.stack([dt ** 3 / 3, dt ** 2 / 2, dt], 1) @ _Q_BLOCKS).reshape(-1, 6, 6)
        x = a["x"][rows]                                        # a copy (fancy index): F·x in place
        x[:, :3] += dt[:, None] * x[:, 3:]
        P = F @ a["P"][rows] @ np.swapaxes(F, 1, 2) + Q
        S = P[:, :3, :3] + R
        S_inv = np.linalg.inv(S)                                # one batched call serves gate and gain
        y = z - x[:, :3]
        d2 = np.einsum("mi,mij,mj->m", y, S_inv, y)
        r_hat = a["rot"][rows]
        rot_gate = math.radians(p.rot_gate_deg)
        turn = _angle(r_hat[:, 0], rot[:, 0])
        # Trusted: the prediction is sharp enough for its gate to reject a metre outlier. Not
        # trusted (a new track's 2nd image at a low rate, the first images after a gap): the
        # estimate is judged by pairing with a recent estimate instead (motion-aware test).
        trusted = np.linalg.eigvalsh(S)[:, -1] <= p.trust_std ** 2
        suspect = (d2 > p.gate) | (turn > rot_gate)
        # Partner 1: the previous held (suspect/candidate) estimate.
        pend = (a["pend"][rows] > 0) & (stamp - a["pend_stamp"][rows] <= p.pair_window)
        agrees = pend & _pair_ok(a["pend_t"][rows], z, R_inv, stamp - a["pend_stamp"][rows], p) & (
            _angle(a["pend_rot"][rows][:, 0], rot[:, 0]) <= rot_gate)
        # Partner 2 (untrusted only): the last accepted estimate, if recent enough.
        last = (~trusted & (stamp - a["last_stamp"][rows] <= p.pair_window)
                & _pair_ok(a["last_t"][rows], z, R_inv, stamp - a["last_stamp"][rows], p) & (turn <= rot_gate))
        ok = np.where(trusted, ~suspect, last)
        jump = ~ok & agrees                                     # a consistent pair of held-back estimates
        held = ~ok & ~jump
        # Normal Kalman update (3 position rows of H = [I 0]).
        K = P[:, :, :3] @ S_inv                                 # P Hᵀ S⁻¹ [m,6,3]
        x_new = np.where(ok[:, None], x + np.einsum("mij,mj->mi", K, y), x)
        P_new = np.where(ok[:, None, None], P - K @ P[:, :3, :], P)
        a["x"][rows], a["P"][rows] = x_new, (P_new + np.swapaxes(P_new, 1, 2)) / 2
        if ok.any():
            r_ok = rows[ok]
            scale = None if vis is None else (p.visibility_floor + (1 - p.visibility_floor) * vis[ok]).reshape(-1)
            est, w_new = so3_one_euro_step(
                a["rot"][r_ok].reshape(-1, 3, 3), a["w"][r_ok].reshape(-1, 3), rot[ok].reshape(-1, 3, 3),
                np.repeat(dt[ok], 24), p.rot_min_cutoff, p.rot_beta, p.d_cutoff, scale)
            a["rot"][r_ok] = est.reshape(-1, 24, 3, 3)
            a["w"][r_ok] = w_new.reshape(-1, 24, 3)
        if jump.any():                                          # restart from the confirmed pair
            rj = rows[jump]
            tp = np.maximum(stamp - a["pend_stamp"][rj], 1e-3)
            v = (z[jump] - a["pend_t"][rj]) / tp[:, None]
            a["x"][rj] = np.concatenate([z[jump], v], 1)
            a["P"][rj] = 0.0
            a["P"][rj, :3, :3] = R[jump]
            a["P"][rj, 3:, 3:] = 2 * R[jump] / tp[:, None, None] ** 2
            a["rot"][rj], a["w"][rj], a["run"][rj] = rot[jump], 0.0, 1.0
        taken = ~held
        a["last_t"][rows[taken]], a["last_stamp"][rows[taken]] = z[taken], stamp
        a["pend"][rows] = held.astype(float)
        a["pend_t"][rows[held]] = z[held]
        a["pend_rot"][rows[held]] = rot[held]
        a["pend_stamp"][rows[held]] = stamp
        return held

    def _output(self, ids, rows, betas, held) -> SmoothedBatch:
        a = self._s.a
        rot = a["rot"][rows].copy()
        wsum = a["wsum"][rows]
        k = betas.shape[1]
        mean = np.where(wsum[:, None] > 0, a["bsum"][rows, :k] / np.where(wsum > 0, wsum, 1)[:, None], betas)
        return SmoothedBatch(
            track_ids=ids, rotmats=rot,
            transl=a["x"][rows, :3].copy(), betas=mean, velocity=a["x"][rows, 3:].copy(),
            velocity_cov=a["P"][rows, 3:, 3:].copy(), velocity_valid=a["run"][rows] > 1,
            frames=a["frames"][rows].astype(np.int64), held=held)

    # ----------------------------------------------------------------------------------
    def update_estimates(self, track_ids: Sequence[int], stamp: float, bodies) -> SmoothedBatch:
        """:meth:`update` reading ``BodyEstimate``s (weights: their detection scores)."""
        return self.update(track_ids, stamp, np.stack([b.rotmats for b in bodies]), np.stack([b.transl for b in bodies]),
                           np.stack([b.betas for b in bodies]),
                           np.stack([b.part_visibility for b in bodies]) if all(
                               getattr(b, "part_visibility", None) is not None for b in bodies) else None,
                           np.array([float(getattr(b, "score", 1.0)) for b in bodies]))

    def predict(self, track_ids: Sequence[int], stamp: float):
        """(transl [P,3], velocity [P,3]) of known tracks extrapolated to ``stamp`` (coasting),
        without changing any state. Unknown ids raise KeyError."""
        rows = self._s.lookup(track_ids)
        if (rows < 0).any():
            raise KeyError(f"unknown track ids {np.asarray(track_ids)[rows < 0].tolist()}")
        x = self._s.a["x"][rows]
        dt = float(stamp) - self._s.a["stamp"][rows]
        return x[:, :3] + dt[:, None] * x[:, 3:], x[:, 3:].copy()

    def drop(self, track_id: int) -> None:
        self._s.drop(track_id)

    def reset(self) -> None:
        self._s = _Store()

    def __contains__(self, track_id: int) -> bool:
        return int(track_id) in self._s.rows

    def __len__(self) -> int:
        return len(self._s.rows)


def _meas_cov(ray: np.ndarray, p: SmoothingParams):
    """(R, R⁻¹) [P,3,3]: measurement covariance, std_along·d along the ray u = ray/d,
    std_across·d across (d = |ray| ≥ 0.1 m). R = αI + βuuᵀ, so by Sherman–Morrison
    R⁻¹ = (I − β/(α + β|u|²)·uuᵀ)/α (|u| < 1 only for rays under 0.1 m)."""
    d = np.maximum(np.sqrt(np.einsum("mi,mi->m", ray, ray)), 0.1)
    u = ray / d[:, None]
    uu = u[:, :, None] * u[:, None, :]
    alpha, along = (p.std_across * d) ** 2, (p.std_along * d) ** 2
    beta = along - alpha
    R = alpha[:, None, None] * _EYE3 + beta[:, None, None] * uu
    k = beta / (alpha + beta * np.einsum("mi,mi->m", u, u))
    return R, (_EYE3 - k[:, None, None] * uu) / alpha[:, None, None]


def _pair_ok(za: np.ndarray, zb: np.ndarray, R_inv: np.ndarray, dt: np.ndarray, p: SmoothingParams) -> np.ndarray:
    """[P] bool: estimates za (dt s earlier) and zb [P,3] are of one person: their displacement,
    less what ``max_speed`` allows in dt, is within the χ²(3) gate of two measurements (2R)."""
    y = zb - za
    n = np.sqrt(np.einsum("mi,mi->m", y, y))
    y = y * np.clip(1 - p.max_speed * np.maximum(dt, 0) / np.maximum(n, 1e-12), 0, None)[:, None]
    return np.einsum("mi,mij,mj->m", y, R_inv, y) / 2 <= p.gate


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle (rad) between rotation stacks a, b [...,3,3]."""
    c = (np.einsum("...ij,...ij->...", a, b) - 1) / 2          # trace(aᵀb) = Σ a∘b
    return np.arccos(np.clip(c, -1.0, 1.0))
