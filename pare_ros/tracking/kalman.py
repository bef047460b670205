"""Constant-velocity Kalman filters of person boxes, for prediction while a track coasts.

State ``[cx, cy, w, h, vcx, vcy, vw, vh]`` in px and px/s; measurement ``[cx, cy, w, h]``.

Why a Kalman filter rather than a fixed-gain alpha-beta filter: frames arrive at irregular
intervals (inference time varies, stale frames are dropped), and the filter handles any ``dt``
through ``F(dt)`` and ``Q(dt)``; its gain adapts, so a new track follows its first detections
(large initial velocity uncertainty) and settles as evidence accumulates, where an alpha-beta
filter with a gain tuned for steady state starts with a wrong velocity and converges slowly.
Noise levels scale with the box height (as in DeepSORT/ByteTrack), so near and far people
behave alike.

The box *size* gets its own, smaller, process noise and initial rate uncertainty: a person's box
height changes only as fast as their distance does (walking towards a camera at 1.4 m/s from
4 m: 0.35 h/s), while its centre can move a box height per second sideways. A common noise
level would let a coasting track's predicted size wander, so that after a second of occlusion
its gate would also accept a much nearer or farther person.

:meth:`BoxKalmanBatch.gating_distance` is the squared Mahalanobis distance of detections to
the prediction (DeepSORT's gate): it grows with the time since the last update and the
velocity uncertainty, so the same gate works at 3 Hz and 30 Hz and for a track seen once
(no velocity yet) as for a settled one.

**Storage.** F(dt), Q(dt), H and the initial covariance couple each coordinate (cx, cy, w, h)
only with its own rate, so the 8×8 covariance is, exactly, four independent 2×2 blocks
``[[var, cov], [cov, rate_var]]``, and stays so through every predict and update. All tracks'
filters are therefore kept as arrays (``x`` [T,8], ``cov`` [T,3,4]) and stepped together with
a few element-wise operations: the 8×8 products, the 4×4 solves and the per-track Python calls
cost far more than the arithmetic on a real-time budget. ``test/test_kalman_batch.py`` checks
this against the textbook 8×8 equations.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

MIN_SIZE = 1.0   # px; prediction never shrinks a box below this


def xyxy_to_cxcywh(boxes) -> np.ndarray:
    """[N,4] xyxy → [N,4] (cx, cy, w, h), float64."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)


def cxcywh_to_xyxy(z: np.ndarray) -> np.ndarray:
    """[N,≥4] (cx, cy, w, h, …) → [N,4] xyxy; sizes below ``MIN_SIZE`` are raised to it."""
    half = np.maximum(z[:, 2:4], MIN_SIZE) / 2
    return np.concatenate([z[:, :2] - half, z[:, :2] + half], axis=1)


class BoxKalmanBatch:
    """The box filters of T tracks, row ``i`` = one track, stepped together.

    Attributes:
        x: [T,8] states. cov: [T,3,4] per coordinate (cx, cy, w, h) its variance
            (``cov[:, 0]``), its covariance with its rate (``cov[:, 1]``) and the rate's
            variance (``cov[:, 2]``): the non-zero entries of the 8×8 covariance P.
        stamp: [T] time (s) each row was last predicted to.

    Args:
        measurement_std: detector box noise, fraction of the box height (1σ).
        accel_std: white-noise acceleration density, fraction of the box height per s²
            (walking people change speed by about half their height per second squared).
        velocity_std: initial velocity uncertainty, box heights per s.
        size_accel_std / size_rate_std: the same two for the box width and height.
    """

    def __init__(self, measurement_std: float = 0.05, accel_std: float = 0.5,
                 velocity_std: float = 1.0, size_accel_std: float = 0.1,
                 size_rate_std: float = 0.3) -> None:
        self.measurement_std = float(measurement_std)
        self.accel = np.array([accel_std, accel_std, size_accel_std, size_accel_std], dtype=np.float64)
        self.rate_std = np.array([velocity_std, velocity_std, size_rate_std, size_rate_std], dtype=np.float64)
        self.x = np.zeros((0, 8))
        self.cov = np.zeros((0, 3, 4))
        self.stamp = np.zeros(0)

    def __len__(self) -> int:
        return len(self.x)

    def add(self, z: np.ndarray, stamp: float) -> None:
        """Append one row per first measurement, z [N,4] (cx, cy, w, h) taken at ``stamp``: at
        rest, with position noise of the measurement and the initial rate uncertainty."""
        h = np.maximum(z[:, 3:4], MIN_SIZE)                                  # [N,1]
        cov = np.zeros((len(z), 3, 4))
        cov[:, 0] = (self.measurement_std * h) ** 2
        cov[:, 2] = (self.rate_std * h) ** 2
        self.x = np.concatenate([self.x, np.concatenate([z, np.zeros_like(z)], axis=1)])
        self.cov = np.concatenate([self.cov, cov])
        self.stamp = np.concatenate([self.stamp, np.full(len(z), float(stamp))])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` [T] (bool) is False; the others keep their order."""
        self.x, self.cov, self.stamp = self.x[mask], self.cov[mask], self.stamp[mask]

    def get(self, row: int) -> Tuple[np.ndarray, np.ndarray, float]:
        """Copy of one row's (x [8], cov [3,4], stamp), for :meth:`set`."""
        return self.x[row].copy(), self.cov[row].copy(), float(self.stamp[row])

    def set(self, row: int, state: Tuple[np.ndarray, np.ndarray, float]) -> None:
        self.x[row], self.cov[row], self.stamp[row] = state

    def predict(self, stamp: float, rows: Optional[Sequence[int]] = None) -> None:
        """Advance ``rows`` (default all) to ``stamp``; a row already at or past it is unchanged.

        Per coordinate with F = [[1, dt], [0, 1]] and the continuous white-noise acceleration
        Q = q [[dt³/3, dt²/2], [dt²/2, dt]], q = (accel · h)², h the box height before the step.
        """
        sel = slice(None) if rows is None else np.asarray(rows, dtype=np.intp)
        x, cov = self.x[sel], self.cov[sel]             # views (all rows) or copies (a list)
        dt = np.maximum(float(stamp) - self.stamp[sel], 0.0)[:, None]      # [R,1]
        a, b, c = cov[:, 0], cov[:, 1], cov[:, 2]                           # [R,4] each
        q = (self.accel * np.maximum(x[:, 3:4], MIN_SIZE)) ** 2             # [R,4]
        # F P Fᵀ + Q per coordinate, written in place: each line reads only entries not yet
        # overwritten (var needs cov and rate_var, cov needs rate_var).
        dt_c = dt * c
        a[:] = a + dt * (2 * b + dt_c) + q * (dt ** 3 / 3)
        b[:] = b + dt_c + q * (dt ** 2 / 2)
        c[:] = c + q * dt
        x[:, :4] += dt * x[:, 4:]
        # Sizes are kept ≥ MIN_SIZE only where time advanced (dt = 0 leaves a row as it was).
        np.maximum(x[:, 2:4], np.where(dt > 0, MIN_SIZE, -np.inf), out=x[:, 2:4])
        if rows is not None:
            self.x[sel], self.cov[sel] = x, cov
        self.stamp[sel] = np.maximum(self.stamp[sel], float(stamp))

    def update(self, rows: Sequence[int], z: np.ndarray) -> np.ndarray:
        """Fuse measurements z [R,4] (cx, cy, w, h), one per row of ``rows`` [R] (distinct),
        taken at the rows' current stamps; returns the rows' new states [R,8] (a copy).
        Measurement noise r = (measurement_std · measured h)².

        Per coordinate: s = var + r, gain k = (var, cov) / s, and P ← (I − K H) P, symmetrised
        (the off-diagonal term is the mean of its two round-off versions, as (P + Pᵀ)/2)."""
        rows = np.asarray(rows, dtype=np.intp)
        r = (self.measurement_std * np.maximum(z[:, 3:4], MIN_SIZE)) ** 2   # [R,1]
        x, cov = self.x[rows], self.cov[rows]                               # copies
        a, b, c = cov[:, 0], cov[:, 1], cov[:, 2]
        k_pos, k_rate = a / (a + r), b / (a + r)
        innovation = z - x[:, :4]
        x[:, :4] += k_pos * innovation
        x[:, 4:] += k_rate * innovation
        # In place, in the order that reads each entry before it is overwritten.
        c[:] = c - k_rate * b
        b[:] = ((1 - k_pos) * b + (b - k_rate * a)) / 2
        a[:] = (1 - k_pos) * a
        self.x[rows], self.cov[rows] = x, cov
        return x

    def gating_distance(self, rows: Sequence[int], z: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance [R,M] of measurements z [M,4] (cx, cy, w, h) to the
        current prediction of each row in ``rows`` [R], with covariance H P Hᵀ + R,
        R = (measurement_std · predicted h)² I. Compare with a χ²(4) quantile (13.28 = 99 %)."""
        rows = np.asarray(rows, dtype=np.intp)
        x = self.x[rows]
        r = (self.measurement_std * np.maximum(x[:, 3:4], MIN_SIZE)) ** 2   # [R,1]
        s = self.cov[rows, 0] + r                                           # [R,4], S is diagonal
        d = z[None] - x[:, None, :4]                                        # [R,M,4]
        return (d * (d / s[:, None])).sum(axis=2)

    def boxes(self, rows: Optional[Sequence[int]] = None) -> np.ndarray:
        """Current boxes [R,4] xyxy of ``rows`` (default all)."""
        return cxcywh_to_xyxy(self.x if rows is None else self.x[np.asarray(rows, dtype=np.intp)])


class BoxKalmanFilter:
    """One box's filter: a :class:`BoxKalmanBatch` of one row (same noise arguments)."""

    def __init__(self, box, stamp: float, **noise) -> None:
        self.batch = BoxKalmanBatch(**noise)
        self.batch.add(xyxy_to_cxcywh(box), stamp)

    def predict(self, stamp: float) -> np.ndarray:
        """Advance to ``stamp`` (no-op when not later); returns the predicted box [4] xyxy."""
        self.batch.predict(stamp)
        return self.box

    def update(self, box) -> None:
        """Fuse a detection box [4] (xyxy) taken at the current stamp."""
        self.batch.update([0], xyxy_to_cxcywh(box))

    def gating_distance(self, boxes) -> np.ndarray:
        """Squared Mahalanobis distance [M] of detection boxes [M,4] to the prediction."""
        return self.batch.gating_distance([0], xyxy_to_cxcywh(boxes))[0]

    @property
    def box(self) -> np.ndarray:
        return self.batch.boxes()[0]

    @property
    def velocity(self) -> np.ndarray:
        """(vcx, vcy, vw, vh) px/s."""
        return self.batch.x[0, 4:].copy()
