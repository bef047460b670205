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
from typing import Optional, Sequence

import numpy as np
from .one_euro import so3_one_euro_step
from .so3 import angle_between, log, nearest_rotation
from .track_store import STAMP, TrackStore, fields

_EYE3 = np.eye(3)
_ONES3, _ONES24 = np.ones(3), np.ones(24)           # sums over a last axis: one matmul
_MINUS_LN2 = -np.log(2)
_ALL = slice(None)                                      # index of every row: views, not copies
# Q(dt) = accel²·[dt³, dt², dt] @ this: white-noise acceleration, per axis, flattened [3,36].
_Q_POWERS = np.array([3.0, 2.0, 1.0])
_Q_TABLE = np.stack([np.kron(b, _EYE3) for b in ([[1.0, 0], [0, 0]], [[0, 1.0], [1.0, 0]],
                                                 [[0, 0], [0, 1.0]])]).reshape(3, 36) / _Q_POWERS[:, None]


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
        """[P,24,3] rotation vectors of ``rotmats`` (on access: the node itself reads rotmats)."""
        return log(self.rotmats)


class BodySmoother:
    """Smoothing state per track id; ``update`` once per image for all its people,
    ``drop`` when a track is deleted, ``reset`` to forget everything."""

    def __init__(self, params: Optional[SmoothingParams] = None) -> None:
        self.params = params or SmoothingParams()
        self._s = TrackStore()

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
        w = np.ones(n) if weights is None else np.maximum(np.asarray(weights, dtype=np.float64).reshape(n), 0)
        # fmax/fmin drop NaN: NaN → 0, ±inf → 1/0 (np.clip of np.nan_to_num, in two ufuncs).
        vis = None if part_visibility is None else np.fmin(np.fmax(
            np.asarray(part_visibility, dtype=np.float64).reshape(n, 24), 0.0), 1.0)
        id_list = ids.tolist()
        if len(set(id_list)) != n:
            raise ValueError(f"track_ids must be distinct within one update, got {id_list}")
        if not (_all(np.isfinite(z)) and _all(np.isfinite(rot)) and _all(np.isfinite(b))):
            raise ValueError("non-finite rotmats/transl/betas: drop those estimates before smoothing")
        stamp = float(stamp)
        s = self._s
        rows = np.array([s.rows.get(t, -1) for t in id_list], dtype=np.int64)
        old = rows >= 0
        n_old = np.count_nonzero(old)
        known = n_old == n                                      # the usual frame: gather first
        block, st = s.gather(rows) if known else (None, None)   # [n, width] (a copy), its fields
        if n_old and stamp < np.minimum.reduce(block[:, STAMP] if known else s.data[rows[old], STAMP]):
            raise ValueError(f"stamp {stamp:.6f} is older than a track's previous one; drop() or reset() "
                             "the track when time jumps back")
        if not known:
            for i in np.nonzero(~old)[0]:
                rows[i] = s.allocate(ids[i])
            block, st = s.gather(rows)
        dt = stamp - st["stamp"] if known else np.where(old, stamp - st["stamp"], np.inf)
        fresh = dt > p.gap_reset if known else ~old | (dt > p.gap_reset)
        same = dt == 0                                          # repeated stamp: keep the state (new: dt = inf)
        run = ~(fresh | same)
        R = _meas_cov(ray, p)                                   # [P,3,3]
        n_run = np.count_nonzero(run)
        held = np.zeros(n, dtype=bool) if n_run < n or not n else None
        if held is None:                                        # the usual frame: no sub-block
            held = self._step(st, dt, z, rot, R, vis, stamp)
        elif n_run:
            sub = block[run]
            held[run] = self._step(fields(sub), dt[run], z[run], rot[run], R[run],
                                   vis if vis is None else vis[run], stamp)
            block[run] = sub
        if np.count_nonzero(fresh):
            self._start(st, fresh, z[fresh], rot[fresh], R[fresh], stamp, keep_betas=old[fresh])
        # Boolean masks that select every row become slice(None): views, not fancy-index copies.
        n_same = np.count_nonzero(same)
        st["stamp"][~same if n_same else _ALL] = stamp
        take = ~(held | same) if n_same or np.count_nonzero(held) else _ALL
        if take is _ALL or np.count_nonzero(take):              # betas: forgetting weighted mean
            k = b.shape[1]
            # Forgetting runs on observed time: over a gap (a LOST track re-found) no evidence
            # arrived and the person is the same, so the gap counts as at most gap_reset. (A new
            # track, dt = inf, has zero sums: any λ gives its first estimate alone.)
            seen = np.minimum(dt[take], p.gap_reset)
            lam = np.exp(_MINUS_LN2 * seen / p.betas_half_life)
            wt = w[take] * (1.0 if vis is None else vis[take] @ _ONES24 / 24)
            st["bsum"][take, :k] = lam[:, None] * st["bsum"][take, :k] + wt[:, None] * b[take]
            st["wsum"][take] = lam * st["wsum"][take] + wt
            st["frames"][take] += 1
            st["run"][take] += 1
        s.data[rows] = block
        return _output(ids, st, b, held)

    def _start(self, st, fresh, z, rot, R, stamp, keep_betas) -> None:
        """(Re)start the ``fresh`` [n] rows of the update's fields ``st``; z, rot, R, keep_betas:
        those rows' values."""
        p = self.params
        st["x"][fresh] = np.concatenate([z, np.zeros_like(z)], 1)
        P = np.zeros((len(z), 6, 6))
        P[:, :3, :3] = R
        P[:, 3:, 3:] = p.velocity_std ** 2 * _EYE3
        st["P"][fresh] = P
        st["rot"][fresh], st["w"][fresh], st["pend"][fresh], st["run"][fresh] = rot, 0.0, 0.0, 0.0
        st["last_t"][fresh], st["last_stamp"][fresh] = z, stamp
        st["frames"][fresh] = np.where(keep_betas, st["frames"][fresh], 0)
        st["bsum"][fresh] = np.where(keep_betas[:, None], st["bsum"][fresh], 0.0)
        st["wsum"][fresh] = np.where(keep_betas, st["wsum"][fresh], 0.0)

    def _step(self, st, dt, z, rot, R, vis, stamp) -> np.ndarray:
        """Kalman predict/gate/update + SO(3) One Euro of existing tracks, in place on their
        fields ``st`` (every row); returns held [m]. The usual frame (no track pending,
        untrusted or held) skips the branches' masks and indexes with views (``_ALL``)."""
        p = self.params
        m = len(dt)
        x = st["x"].copy()
        x[:, :3] += dt[:, None] * x[:, 3:]                      # F·x
        # F·P·Fᵀ + Q with F = [[I, dt·I], [0, I]]: F·P adds dt × the velocity rows to the position
        # rows, (F·P)·Fᵀ the same with columns (elementwise: cheaper than two small matmuls).
        P = st["P"].copy()
        P[:, :3] += dt[:, None, None] * P[:, 3:]
        P[:, :, :3] += dt[:, None, None] * P[:, :, 3:]
        P += p.accel_std ** 2 * ((dt[:, None] ** _Q_POWERS) @ _Q_TABLE).reshape(-1, 6, 6)
        S = P[:, :3, :3] + R
        S_inv = np.linalg.inv(S)                                # one batched call serves gate and gain
        y = z - x[:, :3]
        S_inv_y = (S_inv @ y[:, :, None])[:, :, 0]              # [m,3]
        d2 = (S_inv_y * y) @ _ONES3                             # yᵀS⁻¹y
        rot_gate = math.radians(p.rot_gate_deg)
        turn = angle_between(st["rot"][:, 0], rot[:, 0])
        # Trusted: the prediction is sharp enough for its gate to reject a metre outlier. Not
        # trusted (a new track's 2nd image at a low rate, the first images after a gap): the
        # estimate is judged by pairing with a recent estimate instead (motion-aware test).
        # λmax(S) ≤ trace(S) (S is positive definite) settles a sharp track without an eigensolve.
        S9 = S.reshape(m, 9)
        trusted = S9[:, 0] + S9[:, 4] + S9[:, 8] <= p.trust_std ** 2
        if not _all(trusted):
            trusted[~trusted] = np.linalg.eigvalsh(S[~trusted])[:, -1] <= p.trust_std ** 2
        ok = ~((d2 > p.gate) | (turn > rot_gate))               # not suspect
        # Partner 1: the previous held (suspect/candidate) estimate. (Both partner tests only
        # run when some track has one: a steady frame has none.)
        agrees = st["pend"] > 0
        if np.count_nonzero(agrees):
            agrees &= stamp - st["pend_stamp"] <= p.pair_window
            if np.count_nonzero(agrees):
                agrees &= _pair_ok(st["pend_t"], z, R, stamp - st["pend_stamp"], p) & (
                    angle_between(st["pend_rot"][:, 0], rot[:, 0]) <= rot_gate)
        if not _all(trusted):
            # Partner 2 (untrusted only): the last accepted estimate, if recent enough.
            last = ~trusted & (stamp - st["last_stamp"] <= p.pair_window)
            if np.count_nonzero(last):
                last &= _pair_ok(st["last_t"], z, R, stamp - st["last_stamp"], p) & (turn <= rot_gate)
            ok = np.where(trusted, ok, last)
        n_ok = np.count_nonzero(ok)
        jump = ~ok & agrees if n_ok < m else None               # a consistent pair of held-back estimates
        held = ~ok & ~jump if n_ok < m else np.zeros(m, dtype=bool)
        # Normal Kalman update (3 position rows of H = [I 0]).
        K = P[:, :, :3] @ S_inv                                 # P Hᵀ S⁻¹ [m,6,3]
        x_new, P_new = x + (P[:, :, :3] @ S_inv_y[:, :, None])[:, :, 0], P - K @ P[:, :3, :]
        if n_ok < m:
            x_new, P_new = np.where(ok[:, None], x_new, x), np.where(ok[:, None, None], P_new, P)
        st["x"][:] = x_new
        st["P"][:] = (P_new + P_new.transpose(0, 2, 1)) / 2
        if n_ok:
            sel = _ALL if n_ok == m else ok
            scale = None if vis is None else p.visibility_floor + (1 - p.visibility_floor) * vis[sel]
            st["rot"][sel], st["w"][sel] = so3_one_euro_step(
                st["rot"][sel], st["w"][sel], rot[sel], dt[sel, None], p.rot_min_cutoff, p.rot_beta,
                p.d_cutoff, scale)
        if jump is not None and np.count_nonzero(jump):         # restart from the confirmed pair
            tp = np.maximum(stamp - st["pend_stamp"][jump], 1e-3)
            v = (z[jump] - st["pend_t"][jump]) / tp[:, None]
            st["x"][jump] = np.concatenate([z[jump], v], 1)
            P = np.zeros((len(tp), 6, 6))
            P[:, :3, :3] = R[jump]
            P[:, 3:, 3:] = 2 * R[jump] / tp[:, None, None] ** 2
            st["P"][jump] = P
            st["rot"][jump], st["w"][jump], st["run"][jump] = rot[jump], 0.0, 1.0
        n_held = 0 if n_ok == m else np.count_nonzero(held)
        if n_held < m:
            taken = ~held if n_held else _ALL
            st["last_t"][taken], st["last_stamp"][taken] = z[taken], stamp
        st["pend"][:] = held
        if n_held:
            st["pend_t"][held], st["pend_rot"][held], st["pend_stamp"][held] = z[held], rot[held], stamp
        return held

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
        st = fields(self._s.data[rows])
        x = st["x"]
        dt = float(stamp) - st["stamp"]
        return x[:, :3] + dt[:, None] * x[:, 3:], x[:, 3:].copy()

    def drop(self, track_id: int) -> None:
        self._s.drop(track_id)

    def reset(self) -> None:
        self._s = TrackStore()

    def __contains__(self, track_id: int) -> bool:
        return int(track_id) in self._s.rows

    def __len__(self) -> int:
        return len(self._s.rows)


def _output(ids, st, betas, held) -> SmoothedBatch:
    """The update's result from its fields ``st``: copies (their buffer serves the next update)."""
    wsum = st["wsum"]
    k = betas.shape[1]
    if _all(wsum > 0):                                          # every track has fused an estimate
        mean = st["bsum"][:, :k] / wsum[:, None]
    else:
        mean = np.where(wsum[:, None] > 0, st["bsum"][:, :k] / np.where(wsum > 0, wsum, 1)[:, None], betas)
    return SmoothedBatch(
        track_ids=ids, rotmats=st["rot"].copy(), transl=st["x"][:, :3].copy(), betas=mean,
        velocity=st["x"][:, 3:].copy(), velocity_cov=st["P"][:, 3:, 3:].copy(), velocity_valid=st["run"] > 1,
        frames=st["frames"].astype(np.int64), held=held)


def _all(mask: np.ndarray) -> bool:
    """mask.all() without its Python-level wrapper (µs per call on tiny arrays)."""
    return np.count_nonzero(mask) == mask.size


def _meas_cov(ray: np.ndarray, p: SmoothingParams) -> np.ndarray:
    """[P,3,3] measurement covariance: std_along·d along the ray, std_across·d across it (d =
    its length, at least 0.1 m). With u = ray/d that is across²·I + (along² − across²)·uuᵀ,
    and d²·uuᵀ = ray·rayᵀ: no normalisation."""
    d2 = np.maximum((ray * ray) @ _ONES3, 0.01)
    outer = ray[:, :, None] * ray[:, None, :]
    return (p.std_across ** 2 * d2)[:, None, None] * _EYE3 + (p.std_along ** 2 - p.std_across ** 2) * outer


def _pair_ok(za: np.ndarray, zb: np.ndarray, R: np.ndarray, dt: np.ndarray, p: SmoothingParams) -> np.ndarray:
    """[P] bool: estimates za (dt s earlier) and zb [P,3] are of one person: their displacement,
    less what ``max_speed`` allows in dt, is within the χ²(3) gate of two measurements (2R)."""
    y = zb - za
    n = np.sqrt(np.einsum("mi,mi->m", y, y))
    y = y * np.maximum(1 - p.max_speed * np.maximum(dt, 0) / np.maximum(n, 1e-12), 0)[:, None]
    return np.einsum("mi,mi->m", y, np.linalg.solve(2 * R, y[..., None])[..., 0]) <= p.gate

