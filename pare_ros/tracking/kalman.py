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
filters are therefore kept in one array ``s`` [5,T,4] (value, rate, var, cov, rate_var of each
coordinate) and stepped together with a few element-wise operations on contiguous [T,4]
blocks: the 8×8 products, the 4×4 solves and the per-track Python calls cost far more than the
arithmetic on a real-time budget, and so does each NumPy call (about 1 µs), so a step makes
as few as the formulas allow. ``test/test_kalman_batch.py`` checks this against the textbook
8×8 equations, ``test/test_tracker_equivalence.py`` bit for bit against the earlier layout.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

MIN_SIZE = 1.0   # px; prediction never shrinks a box below this
_ALL = slice(None)
# The constant operands as 0-d float64 arrays: NumPy 2 converts a Python scalar operand anew
# on every call, which costs about half as much again as the operation itself on these sizes;
# the values, and so the results, are the same.
_ZERO, _ONE, _TWO, _THREE, _MIN_SIZE = (np.array(v) for v in (0.0, 1.0, 2.0, 3.0, MIN_SIZE))


def xyxy_to_cxcywh(boxes) -> np.ndarray:
    """[N,4] xyxy → [N,4] (cx, cy, w, h), float64."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / _TWO, b[:, 2:] - b[:, :2]], axis=1)


def cxcywh_to_xyxy(z: np.ndarray) -> np.ndarray:
    """[N,≥4] (cx, cy, w, h, …) → [N,4] xyxy; sizes below ``MIN_SIZE`` are raised to it."""
    half = np.maximum(z[:, 2:4], _MIN_SIZE) / _TWO
    return np.concatenate([z[:, :2] - half, z[:, :2] + half], axis=1)


def row_index(rows: Optional[Sequence[int]], n: int):
    """An index for ``rows`` of an n-row array: ``slice(None)`` for None or for a list of every
    row in order (a view instead of a gather: the steady state, where every track takes part),
    else an intp array."""
    if rows is None or (type(rows) is list and len(rows) == n and rows == list(range(n))):
        return _ALL
    return np.asarray(rows, dtype=np.intp)


def take_rows(a: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """``a[rows]`` to read: ``a`` itself when ``rows`` is every row in order, else a gather."""
    sel = row_index(rows, len(a))
    return a if sel is _ALL else a[sel]


class BoxKalmanBatch:
    """The box filters of T tracks, row ``i`` = one track, stepped together.

    Attributes:
        s: [5,T,4] the filter state, one [T,4] block per quantity of each coordinate
            (cx, cy, w, h): value, rate, value variance, value-rate covariance, rate variance.
            Every step's operand is then a contiguous [T,4] block: on strided per-row views
            NumPy loops row by row, which costs more than the arithmetic at these sizes.
        pos, rate: views ``s[0]``, ``s[1]`` [T,4] (cx, cy, w, h) and (vcx, vcy, vw, vh).
        x: [T,8] states (pos, rate), a read-only copy. cov: [T,3,4] view of ``s[2:]``: per
            coordinate its variance (``cov[:, 0]``), its covariance with its rate
            (``cov[:, 1]``) and the rate's variance (``cov[:, 2]``): the non-zero entries of
            the 8×8 covariance P.
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
        self.s = np.zeros((5, 0, 4))
        self.stamp = np.zeros(0)

    def __len__(self) -> int:
        return len(self.stamp)

    @property
    def pos(self) -> np.ndarray:
        return self.s[0]

    @property
    def rate(self) -> np.ndarray:
        return self.s[1]

    @property
    def x(self) -> np.ndarray:
        x = np.concatenate([self.s[0], self.s[1]], axis=1)
        x.flags.writeable = False               # a copy: writing to it would change nothing
        return x

    @property
    def cov(self) -> np.ndarray:
        return self.s[2:].transpose(1, 0, 2)

    def add(self, z: np.ndarray, stamp: float) -> None:
        """Append one row per first measurement, z [N,4] (cx, cy, w, h) taken at ``stamp``: at
        rest, with position noise of the measurement and the initial rate uncertainty."""
        h = np.maximum(z[:, 3:4], MIN_SIZE)                                  # [N,1]
        new = np.zeros((5, len(z), 4))
        new[0] = z
        new[2] = (self.measurement_std * h) ** 2
        new[4] = (self.rate_std * h) ** 2
        self.s = np.concatenate([self.s, new], axis=1)
        self.stamp = np.concatenate([self.stamp, np.full(len(z), float(stamp))])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` [T] (bool) is False; the others keep their order."""
        self.s, self.stamp = self.s[:, mask], self.stamp[mask]

    def get(self, row: int) -> Tuple[np.ndarray, np.ndarray, float]:
        """Copy of one row's (x [8], cov [3,4], stamp), for :meth:`set`."""
        return self.s[:2, row].flatten(), self.s[2:, row].copy(), float(self.stamp[row])

    def set(self, row: int, state: Tuple[np.ndarray, np.ndarray, float]) -> None:
        x, cov, self.stamp[row] = state
        self.s[:2, row] = np.reshape(x, (2, 4))
        self.s[2:, row] = cov

    def predict(self, stamp: float, rows: Optional[Sequence[int]] = None) -> None:
        """Advance ``rows`` (default all) to ``stamp``; a row already at or past it is unchanged.

        Per coordinate with F = [[1, dt], [0, 1]] and the continuous white-noise acceleration
        Q = q [[dt³/3, dt²/2], [dt²/2, dt]], q = (accel · h)², h the box height before the step.
        """
        sel = row_index(rows, len(self.stamp))
        s = self.s[:, sel]                              # a view (all rows) or a copy (a list)
        pos, rate, a, b, c = s                          # [R,4] each
        now = np.array(float(stamp))                    # 0-d, used twice
        # dt [R,4], one column per coordinate: same-shape contiguous operands are one NumPy loop;
        # a broadcast [R,1] column is a loop per row.
        dt = np.maximum(now - self.stamp[sel], _ZERO).repeat(4).reshape(-1, 4)
        q = (self.accel * np.maximum(pos[:, 3:4], _MIN_SIZE)) ** 2          # [R,4]
        # F P Fᵀ + Q per coordinate, in place: var += dt (2 cov + dt rate_var), cov += dt rate_var
        # (var first: it reads the old cov), then all three += q (dt³/3, dt²/2, dt) in one
        # product: per entry the same operations in the same order as written out one by one.
        dt_c = dt * c
        a += dt * ((b + b) + dt_c)                     # b + b: 2 b exactly, cheaper
        b += dt_c
        s[2:] += q * np.concatenate([dt ** 3 / _THREE, dt ** 2 / _TWO, dt]).reshape(3, -1, 4)
        pos += dt * rate
        # Sizes are kept ≥ MIN_SIZE only where time advanced (dt = 0 leaves a row as it was).
        np.maximum(pos[:, 2:], _MIN_SIZE, out=pos[:, 2:], where=dt[:, 2:] > _ZERO)
        if sel is _ALL:
            np.maximum(self.stamp, now, out=self.stamp)
        else:
            self.s[:, sel] = s
            self.stamp[sel] = np.maximum(self.stamp[sel], now)

    def update(self, rows: Sequence[int], z: np.ndarray) -> np.ndarray:
        """Fuse measurements z [R,4] (cx, cy, w, h), one per row of ``rows`` [R] (distinct),
        taken at the rows' current stamps; returns the rows' new states [R,8] (a copy).
        Measurement noise r = (measurement_std · measured h)².

        Per coordinate: s = var + r, gain k = (var, cov) / s, and P ← (I − K H) P, symmetrised
        (the off-diagonal term is the mean of its two round-off versions, as (P + Pᵀ)/2)."""
        sel = row_index(rows, len(self.stamp))
        r = (self.measurement_std * np.maximum(z[:, 3:4], _MIN_SIZE)) ** 2  # [R,1]
        s = self.s[:, sel]                              # a view (all rows) or a copy (a list)
        pos, rate, a, b, c = s
        gain = s[2:4] / (a + r)                         # [2,R,4]: (k_pos, k_rate)
        k_pos, k_rate = gain
        s[:2] += gain * (z - pos)                       # value and rate += k · innovation
        # In place, in the order that reads each entry before it is overwritten.
        c -= k_rate * b
        one_minus_k = _ONE - k_pos
        np.divide(one_minus_k * b + (b - k_rate * a), _TWO, out=b)
        a *= one_minus_k
        if sel is not _ALL:
            self.s[:, sel] = s
        return np.concatenate([pos, rate], axis=1)

    def gating_distance(self, rows: Sequence[int], z: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance [R,M] of measurements z [M,4] (cx, cy, w, h) to the
        current prediction of each row in ``rows`` [R], with covariance H P Hᵀ + R,
        R = (measurement_std · predicted h)² I. Compare with a χ²(4) quantile (13.28 = 99 %)."""
        sel = row_index(rows, len(self.stamp))
        pos = self.s[0, sel]
        r = (self.measurement_std * np.maximum(pos[:, 3:4], _MIN_SIZE)) ** 2  # [R,1]
        var = self.s[2, sel] + r                                            # [R,4], S is diagonal
        d = z[None] - pos[:, None]                                          # [R,M,4]
        return (d * (d / var[:, None])).sum(axis=2)

    def boxes(self, rows: Optional[Sequence[int]] = None) -> np.ndarray:
        """Current boxes [R,4] xyxy of ``rows`` (default all)."""
        return cxcywh_to_xyxy(self.s[0, row_index(rows, len(self.stamp))])


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
        return self.batch.rate[0].copy()
