"""Short-horizon forecast of a tracked person's root position (0 … ``horizon`` s).

The motion model is the tracker's: the smoother gives each track a smoothed root position and
root velocity (:mod:`.smoothing`); the forecast continues that velocity,

    p(t) = p0 + v·t                                  (constant velocity, the default)
    p(t) = p0 + v·τ·(1 − e^(−t/τ)),  τ = 1/damping   (``damping`` > 0: the speed decays)

with the velocity's component along ``up`` removed when a fixed world frame says where up is
(people walk on the ground; vertical velocity is estimation noise).

Uncertainty grows with the horizon as for a constant-velocity Kalman model driven by white
acceleration noise of spectral density ``accel_sigma``² (per axis, isotropic):

    σ(t)² = position_sigma² + velocity_sigma²·t² + accel_sigma²·t³/3

``still_speed`` is a dead band: a track slower than that is forecast standing (a standing
person's estimated velocity is noise; continuing it only adds error). ``still_speed = 0`` is
the plain constant-velocity baseline. Which settings the node
uses was decided on the ground-truth harness (:mod:`.forecast_eval`, figures in docs/planners.md).

Joints are carried rigidly with the root (``joints + (p(t) − p0)``): a planner needs where the
body will be, not its future pose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class ForecastParams:
    """horizon, step: s. position_sigma: m; velocity_sigma: m/s; accel_sigma: m/s^1.5
    (white-acceleration density); still_speed: m/s (0 = off); still_sigmas: a speed below
    this many standard deviations of its own estimate (the smoother's velocity covariance along
    the velocity) counts as standing (0 = off); damping: 1/s (0 = constant
    velocity); up: (3,) unit vector of the fixed frame's up axis, or None (camera frame)."""

    horizon: float = 1.5
    step: float = 0.1
    position_sigma: float = 0.05
    velocity_sigma: float = 0.15
    accel_sigma: float = 0.8
    still_speed: float = 0.4
    still_sigmas: float = 1.5
    damping: float = 0.0
    up: Optional[Sequence[float]] = None

    def times(self) -> np.ndarray:
        """(K,) forecast times 0, step, …, horizon (s after the estimate's stamp)."""
        if self.step <= 0 or self.horizon < 0:
            raise ValueError(f"forecast needs step > 0 and horizon ≥ 0, got {self.step}, {self.horizon}")
        k = int(np.floor(self.horizon / self.step + 1e-9))
        return np.arange(k + 1) * self.step


@dataclass(frozen=True)
class Forecast:
    """times (K,) s after ``stamp``; positions (K,3) m; sigma (K,) m (1σ per axis);
    velocity (3,) m/s actually continued (after the dead band and the up projection)."""

    stamp: float
    times: np.ndarray
    positions: np.ndarray
    sigma: np.ndarray
    velocity: np.ndarray

    def at(self, t: float) -> np.ndarray:
        """(3,) position linearly interpolated at ``t`` s after the stamp (clamped to the horizon)."""
        return np.array([np.interp(t, self.times, self.positions[:, i]) for i in range(3)])


def planar_velocity(velocity, up) -> np.ndarray:
    """(3,) velocity without its component along the unit vector ``up`` (None: unchanged)."""
    v = np.asarray(velocity, dtype=np.float64).reshape(3)
    if up is None:
        return v.copy()
    u = np.asarray(up, dtype=np.float64).reshape(3)
    u = u / np.linalg.norm(u)
    return v - u * (v @ u)


def displacement(times: np.ndarray, velocity: np.ndarray, damping: float) -> np.ndarray:
    """(K,3) displacement after ``times`` (K,) for the (damped) constant-velocity model."""
    t = np.asarray(times, dtype=np.float64)[:, None]
    if damping <= 0:
        return t * velocity
    tau = 1.0 / damping
    return tau * (1.0 - np.exp(-t / tau)) * velocity


def forecast_sigma(times: np.ndarray, p: ForecastParams) -> np.ndarray:
    t = np.asarray(times, dtype=np.float64)
    return np.sqrt(p.position_sigma ** 2 + (p.velocity_sigma * t) ** 2 + p.accel_sigma ** 2 * t ** 3 / 3.0)


def forecast_root(stamp: float, position, velocity, params: ForecastParams,
                  velocity_valid: bool = True, velocity_cov=None) -> Forecast:
    """Forecast from one track's smoothed root ``position`` (3,) m and ``velocity`` (3,) m/s at
    ``stamp`` s (``velocity_cov`` (3,3) (m/s)², the smoother's, for ``still_sigmas``). Without
    a valid velocity (a track's first frame) the person is forecast standing, with the same
    growing uncertainty."""
    p = params
    times = p.times()
    v = planar_velocity(velocity, p.up) if velocity_valid and velocity is not None else np.zeros(3)
    speed = float(np.linalg.norm(v))
    if not np.all(np.isfinite(v)) or speed < p.still_speed:
        v = np.zeros(3)
    elif p.still_sigmas > 0 and velocity_cov is not None and speed > 0:
        u = v / speed
        if speed < p.still_sigmas * math.sqrt(max(float(u @ np.asarray(velocity_cov) @ u), 0.0)):
            v = np.zeros(3)
    p0 = np.asarray(position, dtype=np.float64).reshape(3)
    return Forecast(float(stamp), times, p0 + displacement(times, v, p.damping), forecast_sigma(times, p), v)


def zero_velocity(params: ForecastParams) -> ForecastParams:
    """The baseline that says everybody stays where they are."""
    from dataclasses import replace

    return replace(params, still_speed=np.inf, damping=0.0)


def swept_points(forecasts: Sequence[Forecast], offsets: Optional[Sequence[np.ndarray]] = None,
                 stride: int = 1) -> np.ndarray:
    """Points of the region the people are forecast to sweep over the horizon, for costmaps.

    forecasts: one per person. offsets: per person, (M,3) body points relative to the root
    (e.g. decimated mesh vertices − root), or None for the root alone. stride: use every n-th
    forecast time. Returns (N,5): x, y, z, t (s after the stamp), sigma (m), person index as the
    caller's order is kept (rows grouped per person, then per time)."""
    rows = []
    for f, rel in zip(forecasts, offsets if offsets is not None else [None] * len(forecasts)):
        rel = np.zeros((1, 3)) if rel is None else np.asarray(rel, dtype=np.float64).reshape(-1, 3)
        for k in range(0, len(f.times), max(int(stride), 1)):
            pts = f.positions[k] + rel
            rows.append(np.column_stack([pts, np.full(len(pts), f.times[k]), np.full(len(pts), f.sigma[k])]))
    return np.concatenate(rows) if rows else np.empty((0, 5))
