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
the plain constant-velocity baseline.

``stop_ratio`` is a speed-drop test for the frame right after a stop, the one the two gates
miss: when a person stops, the Kalman velocity falls to about half in the first frame (0.3–0.6
of the walking speed on the harness) and below the gates in the second; a walker's speed
changes by less than that from one frame to the next (below 0.55× in 2 % of the harness's
walking/turning frames, mostly in turns). A track whose speed fell below ``stop_ratio`` × its
speed at the previous frame (at most ``stop_window`` s before) is forecast standing. That needs
the previous frame: :class:`Forecaster` keeps it per track (``forecast_root`` takes it as
``previous_speed``; without it the test is off). Which settings the node
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
    velocity); up: (3,) unit vector of the fixed frame's up axis, or None (camera frame);
    stop_ratio: a speed below this fraction of the previous frame's counts as a stop (0 = off);
    stop_window: s, how old that previous frame may be."""

    horizon: float = 1.5
    step: float = 0.1
    position_sigma: float = 0.05
    velocity_sigma: float = 0.15
    accel_sigma: float = 0.8
    still_speed: float = 0.4
    still_sigmas: float = 1.5
    damping: float = 0.0
    up: Optional[Sequence[float]] = None
    stop_ratio: float = 0.55
    stop_window: float = 0.15

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
                  velocity_valid: bool = True, velocity_cov=None,
                  previous_speed: Optional[float] = None) -> Forecast:
    """Forecast from one track's smoothed root ``position`` (3,) m and ``velocity`` (3,) m/s at
    ``stamp`` s (``velocity_cov`` (3,3) (m/s)², the smoother's, for ``still_sigmas``;
    ``previous_speed`` m/s, the track's :func:`planar_velocity` speed at its previous frame, for
    ``stop_ratio``: None = test off). Without a valid velocity (a track's first frame) the
    person is forecast standing, with the same growing uncertainty."""
    p = params
    times = p.times()
    v = planar_velocity(velocity, p.up) if velocity_valid and velocity is not None else np.zeros(3)
    speed = float(np.linalg.norm(v))
    if not np.all(np.isfinite(v)) or speed < p.still_speed:
        v = np.zeros(3)
    elif p.stop_ratio > 0 and previous_speed is not None and speed < p.stop_ratio * previous_speed:
        v = np.zeros(3)
    elif p.still_sigmas > 0 and velocity_cov is not None and speed > 0:
        u = v / speed
        if speed < p.still_sigmas * math.sqrt(max(float(u @ np.asarray(velocity_cov) @ u), 0.0)):
            v = np.zeros(3)
    p0 = np.asarray(position, dtype=np.float64).reshape(3)
    return Forecast(float(stamp), times, p0 + displacement(times, v, p.damping), forecast_sigma(times, p), v)


class Forecaster:
    """:func:`forecast_root` per track id, remembering each track's previous speed for the
    speed-drop test (``stop_ratio``). ``retain`` the live ids once per frame (or ``drop`` one)
    so that a deleted track's memory goes; ``reset`` forgets all."""

    def __init__(self) -> None:
        self._last: dict = {}          # track id → (stamp, planar speed, the speed before it)

    def forecast(self, track_id: int, stamp: float, position, velocity, params: ForecastParams,
                 velocity_valid: bool = True, velocity_cov=None) -> Forecast:
        ok = velocity_valid and velocity is not None and np.all(np.isfinite(velocity))
        speed = float(np.linalg.norm(planar_velocity(velocity, params.up))) if ok else None
        prev = self._last.get(int(track_id))                   # (stamp, speed, its own previous)
        if prev is not None and float(stamp) == prev[0]:
            previous = prev[2]                                  # the same frame again: same answer
        else:
            previous = (prev[1] if prev is not None and 0 < float(stamp) - prev[0] <= params.stop_window + 1e-9
                        else None)
        if speed is None:
            self._last.pop(int(track_id), None)
        elif prev is None or float(stamp) >= prev[0]:
            self._last[int(track_id)] = (float(stamp), speed, previous)
        return forecast_root(stamp, position, velocity, params, velocity_valid, velocity_cov, previous)

    def retain(self, track_ids) -> None:
        keep = {int(t) for t in track_ids}
        self._last = {k: v for k, v in self._last.items() if k in keep}

    def drop(self, track_id: int) -> None:
        self._last.pop(int(track_id), None)

    def reset(self) -> None:
        self._last.clear()

    def __len__(self) -> int:
        return len(self._last)


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
