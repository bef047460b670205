"""Constant-velocity Kalman filter of a person box, for prediction while a track coasts.

State ``[cx, cy, w, h, vcx, vcy, vw, vh]`` in px and px/s; measurement ``[cx, cy, w, h]``.

Why a Kalman filter rather than a fixed-gain alpha-beta filter: frames arrive at irregular
intervals (inference time varies, stale frames are dropped), and the filter handles any ``dt``
through ``F(dt)`` and ``Q(dt)``; its gain adapts, so a new track follows its first detections
(large initial velocity uncertainty) and settles as evidence accumulates, where an alpha-beta
filter with a gain tuned for steady state starts with a wrong velocity and converges slowly.
Noise levels scale with the box height (as in DeepSORT/ByteTrack), so near and far people
behave alike. The cost is a few 8×8 products per track and frame.

The box *size* gets its own, smaller, process noise and initial rate uncertainty: a person's box
height changes only as fast as their distance does (walking towards a camera at 1.4 m/s from
4 m: 0.35 h/s), while its centre can move a box height per second sideways. A common noise
level would let a coasting track's predicted size wander, so that after a second of occlusion
its gate would also accept a much nearer or farther person.

:meth:`BoxKalmanFilter.gating_distance` is the squared Mahalanobis distance of detections to
the prediction (DeepSORT's gate): it grows with the time since the last update and the
velocity uncertainty, so the same gate works at 3 Hz and 30 Hz and for a track seen once
(no velocity yet) as for a settled one.
"""
from __future__ import annotations

import numpy as np

MIN_SIZE = 1.0   # px; prediction never shrinks a box below this


def xyxy_to_cxcywh(box) -> np.ndarray:
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])


def cxcywh_to_xyxy(z) -> np.ndarray:
    cx, cy, w, h = z[:4]
    w, h = max(w, MIN_SIZE), max(h, MIN_SIZE)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class BoxKalmanFilter:
    """Args:
        box: first detection, xyxy px; stamp: its time (s).
        measurement_std: detector box noise, fraction of the box height (1σ).
        accel_std: white-noise acceleration density, fraction of the box height per s²
            (walking people change speed by about half their height per second squared).
        velocity_std: initial velocity uncertainty, box heights per s.
        size_accel_std / size_rate_std: the same two for the box width and height.
    """

    def __init__(self, box, stamp: float, measurement_std: float = 0.05,
                 accel_std: float = 0.5, velocity_std: float = 1.0,
                 size_accel_std: float = 0.1, size_rate_std: float = 0.3) -> None:
        z = xyxy_to_cxcywh(box)
        self.x = np.concatenate([z, np.zeros(4)])
        h = max(z[3], MIN_SIZE)
        rate = np.array([velocity_std, velocity_std, size_rate_std, size_rate_std])
        self.P = np.diag(np.r_[np.full(4, (measurement_std * h) ** 2), (rate * h) ** 2])
        self.stamp = float(stamp)
        self.measurement_std = measurement_std
        self.accel = np.array([accel_std, accel_std, size_accel_std, size_accel_std])
        self.H = np.hstack([np.eye(4), np.zeros((4, 4))])

    def predict(self, stamp: float) -> np.ndarray:
        """Advance to ``stamp`` (no-op when not later); returns the predicted box xyxy."""
        dt = float(stamp) - self.stamp
        if dt > 0:
            F = np.eye(8)
            F[:4, 4:] = dt * np.eye(4)
            # Continuous white-noise acceleration, integrated over dt, per axis.
            q = np.diag((self.accel * max(self.x[3], MIN_SIZE)) ** 2)
            Q = np.kron(np.array([[dt ** 3 / 3, dt ** 2 / 2], [dt ** 2 / 2, dt]]), q)
            self.x = F @ self.x
            self.P = F @ self.P @ F.T + Q
            self.x[2:4] = np.maximum(self.x[2:4], MIN_SIZE)
            self.stamp = float(stamp)
        return self.box

    def update(self, box) -> None:
        """Fuse a detection box (xyxy) taken at the current ``stamp``."""
        z = xyxy_to_cxcywh(box)
        r = (self.measurement_std * max(z[3], MIN_SIZE)) ** 2
        S = self.H @ self.P @ self.H.T + r * np.eye(4)
        K = np.linalg.solve(S, self.H @ self.P).T        # P Hᵀ S⁻¹ (S symmetric)
        self.x = self.x + K @ (z - self.H @ self.x)
        self.P = (np.eye(8) - K @ self.H) @ self.P
        self.P = (self.P + self.P.T) / 2                  # keep it symmetric against round-off

    def gating_distance(self, boxes) -> np.ndarray:
        """Squared Mahalanobis distance [M] of detection boxes [M,4] (xyxy) to the current
        prediction, on (cx, cy, w, h) with covariance H P Hᵀ + R. Compare with a χ²(4)
        quantile (13.28 = 99 %)."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        z = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
        r = (self.measurement_std * max(self.x[3], MIN_SIZE)) ** 2
        S = self.H @ self.P @ self.H.T + r * np.eye(4)
        d = z - self.x[:4]
        return np.einsum("mi,mi->m", d, np.linalg.solve(S, d.T).T)

    @property
    def box(self) -> np.ndarray:
        return cxcywh_to_xyxy(self.x)

    @property
    def velocity(self) -> np.ndarray:
        """(vcx, vcy, vw, vh) px/s."""
        return self.x[4:].copy()
