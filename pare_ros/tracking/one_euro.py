"""One Euro filters (Casiez, Roussel & Vogel, CHI 2012) for points and for rotations.

A first-order low-pass whose cutoff rises with speed: ``cutoff = min_cutoff + beta·|ẋ|``.
Slow motion is smoothed hard (jitter removed), fast motion passes with little lag. Per step
``α = 1 / (1 + τ/dt)``, ``τ = 1/(2π·cutoff)``: any frame interval works, taken from the stamps.

Both filters accept a per-element ``cutoff_scale`` s ∈ (0, 1]:
``cutoff = s·(min_cutoff + s·beta·|ẋ|)``. A smaller cutoff gives a smaller α, so the output
leans more on the filter's previous estimate (the prediction) and less on the new
measurement. The speed gain is scaled too, so that a sudden jump of an unreliable element is
not taken for fast motion (which would open the filter again). :mod:`.smoothing` sets s from
PARE's part visibility.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import so3
from .so3 import nearest_rotation

_ONES3 = np.ones(3)                              # (w * w) @ _ONES3: squared norms as one matmul


def smoothing_factor(cutoff, dt: float) -> np.ndarray:
    """α of a first-order low-pass with ``cutoff`` Hz over ``dt`` s."""
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


def _cutoff(min_cutoff: float, beta: float, speed: np.ndarray, scale=None) -> np.ndarray:
    """Per-element cutoff (Hz) from the filtered speed [...] and an optional scale [...] (or
    flattened to [N]) or scalar."""
    if scale is None:
        return min_cutoff + beta * speed
    s, speed = np.asarray(scale, dtype=np.float64), np.asarray(speed)
    if s.shape != speed.shape:
        s = s.reshape(speed.shape) if s.size == speed.size else s.reshape(-1)     # or [1]: broadcasts
    return s * (min_cutoff + s * beta * speed)


class OneEuroFilter:
    """One Euro filter of N points [N,D] (or a single vector [D]) at once.

    The speed driving the cutoff is the norm of each point's derivative (D components), so it
    does not depend on the axes. ``min_cutoff`` Hz, ``beta`` s/unit (cutoff gain per unit/s of
    speed), ``d_cutoff`` Hz (derivative low-pass). ``velocity`` is a separate estimate: the
    derivative of the filtered output, low-passed at ``d_cutoff`` (unbiased for constant
    velocity, unlike the paper's speed term, which is taken against the lagging estimate).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self.x_hat: Optional[np.ndarray] = None
        self.dx_hat: Optional[np.ndarray] = None
        self.velocity: Optional[np.ndarray] = None
        self.stamp: Optional[float] = None

    def __call__(self, x, stamp: float, cutoff_scale=None) -> np.ndarray:
        """x [N,D] or [D] at ``stamp`` s → filtered, same shape. ``cutoff_scale`` [N] or scalar."""
        x = np.asarray(x, dtype=np.float64)
        points = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x[None]
        if self.x_hat is None or stamp < self.stamp:
            self.x_hat, self.stamp = points.copy(), float(stamp)
            self.dx_hat = np.zeros_like(points)
            self.velocity = np.zeros_like(points)
            return x.copy()
        dt = float(stamp) - self.stamp
        if dt == 0:                       # same stamp again: no time has passed, keep the state
            return self.x_hat.reshape(x.shape).copy()
        a_d = smoothing_factor(self.d_cutoff, dt)
        dx = (points - self.x_hat) / dt
        self.dx_hat = a_d * dx + (1 - a_d) * self.dx_hat
        cutoff = _cutoff(self.min_cutoff, self.beta, np.linalg.norm(self.dx_hat, axis=-1), cutoff_scale)
        a = smoothing_factor(cutoff, dt)[:, None]
        new = a * points + (1 - a) * self.x_hat
        self.velocity = a_d * (new - self.x_hat) / dt + (1 - a_d) * self.velocity
        self.x_hat, self.stamp = new, float(stamp)
        return new.reshape(x.shape).copy()


def so3_one_euro_step(r_hat: np.ndarray, w_hat: np.ndarray, r: np.ndarray, dt, min_cutoff: float,
                      beta: float, d_cutoff: float, cutoff_scale=None):
    """One SO(3) One Euro step for a stack of rotations at once (the maths of :class:`SO3OneEuroFilter`).

    r_hat, r [...,3,3]: rotations (estimate, measurement); w_hat [...,3] rad/s filtered rate; dt
    s (> 0), scalar or broadcastable to the stack's shape [...] (the smoother passes [P,1] for
    [P,24] stacks: one interval per person, no repeat); cutoff_scale [...] or None. Returns
    (new r_hat [...,3,3], new w_hat [...,3]).
    """
    dt = np.asarray(dt, dtype=np.float64)[..., None]                      # [...,1]
    delta = so3.log(r_hat.swapaxes(-1, -2) @ r)                          # [...,3], in r_hat's frame
    # smoothing_factor's α = 1 / (1 + τ/dt), τ = 1/(2π·cutoff), as x / (1 + x) with x = 2π·cutoff·dt
    # (the same to rounding, two array operations fewer; 2π·dt serves both filters).
    two_pi_dt = 2 * np.pi * dt
    x_d = d_cutoff * two_pi_dt
    a_d = x_d / (1 + x_d)
    w_hat = a_d * (delta / dt) + (1 - a_d) * w_hat
    speed = np.sqrt((w_hat * w_hat) @ _ONES3)
    x = _cutoff(min_cutoff, beta, speed, cutoff_scale)[..., None] * two_pi_dt
    return r_hat @ so3.exp(x / (1 + x) * delta), w_hat


class SO3OneEuroFilter:
    """One Euro filter of N rotations on SO(3), never component-wise on matrices.

    Per step, with R̂ the previous estimate and R the measurement: δ = log(R̂ᵀR) (rotation
    vector in R̂'s frame, |δ| ≤ π), ω = δ/dt, ω̂ = low-pass(ω, d_cutoff), cutoff = min_cutoff +
    beta·|ω̂| (Hz, beta in s/rad), R̂ ← R̂·exp(α·δ) (:mod:`.so3`): every output is a rotation
    to rounding; at |δ| = π exactly either direction is the same rotation and the step stays
    valid.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self.r_hat: Optional[np.ndarray] = None
        self.w_hat: Optional[np.ndarray] = None
        self.stamp: Optional[float] = None

    def __call__(self, rotmats, stamp: float, cutoff_scale=None) -> np.ndarray:
        """rotmats [N,3,3] at ``stamp`` s → filtered [N,3,3] (orthonormal, det +1)."""
        r = nearest_rotation(np.asarray(rotmats).reshape(-1, 3, 3))
        if self.r_hat is None or stamp < self.stamp or len(r) != len(self.r_hat):
            self.r_hat, self.stamp = r, float(stamp)
            self.w_hat = np.zeros((len(r), 3))
            return r.copy()
        dt = float(stamp) - self.stamp
        if dt == 0:
            return self.r_hat.copy()
        self.r_hat, self.w_hat = so3_one_euro_step(self.r_hat, self.w_hat, r, dt, self.min_cutoff,
                                                   self.beta, self.d_cutoff, cutoff_scale)
        self.stamp = float(stamp)
        return self.r_hat.copy()
