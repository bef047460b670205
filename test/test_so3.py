"""pare_ros.tracking.so3 (rotation log/exp/projection in NumPy) and the SO(3) One Euro step
built on it, against independent references: scipy's Rotation and the SVD projection, on
random rotations and the edge cases (angle 0, tiny, near and at π; noisy, scaled and
reflected matrices)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pare_ros.tracking import so3
from pare_ros.tracking.one_euro import _cutoff, smoothing_factor, so3_one_euro_step


def _axes(rng, n):
    a = rng.normal(size=(n, 3))
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _angles(rng):
    """Uniform, tiny (down to 1e-15), exactly 0, near π (down to 1e-12 away) and exactly π."""
    return np.concatenate([rng.uniform(0, np.pi, 400), 10.0 ** rng.uniform(-15, -2, 200), [0.0, 0.0],
                           np.pi - 10.0 ** rng.uniform(-12, -2, 200), [np.pi, np.pi]])


def _svd_projection(m):
    """Reference: U·diag(1, 1, det UVᵀ)·Vᵀ, per matrix through np.linalg."""
    u, _, vt = np.linalg.svd(m)
    u[..., :, 2] *= np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)[..., None]
    return u @ vt


def test_exp_matches_scipy():
    rng = np.random.default_rng(0)
    ang = _angles(rng)
    rotvec = _axes(rng, len(ang)) * ang[:, None]
    np.testing.assert_allclose(so3.exp(rotvec), Rotation.from_rotvec(rotvec).as_matrix(), rtol=0, atol=2e-15)
    np.testing.assert_array_equal(so3.exp(np.zeros(3)), np.eye(3))
    assert so3.exp(rotvec.reshape(2, -1, 3)).shape == (2, len(ang) // 2, 3, 3)


def test_log_matches_scipy_and_inverts_exp():
    rng = np.random.default_rng(1)
    ang = _angles(rng)
    rotvec = _axes(rng, len(ang)) * ang[:, None]
    m = Rotation.from_rotvec(rotvec).as_matrix()
    got = so3.log(m)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), ang, rtol=0, atol=4e-15)
    # Away from π the rotation vector is unique: equal to scipy's, and relative to the angle
    # even for tiny ones (no cancellation).
    unique = ang < np.pi - 1e-6
    np.testing.assert_allclose(got[unique], Rotation.from_matrix(m[unique]).as_rotvec(), rtol=0, atol=2e-15)
    tiny = (ang > 0) & (ang < 1e-2)
    np.testing.assert_allclose(got[tiny], rotvec[tiny], rtol=1e-9, atol=0)
    # At (and within rounding of) π ±v are the same rotation: compare as rotations.
    np.testing.assert_allclose(so3.exp(got), m, rtol=0, atol=2e-15)
    np.testing.assert_array_equal(so3.log(np.eye(3)), np.zeros(3))
    assert so3.log(np.zeros((0, 24, 3, 3))).shape == (0, 24, 3)


def test_log_at_pi_from_every_diagonal_case():
    # 180° about each axis and a few oblique ones: Shepperd's x/y/z cases (w = 0) all used.
    for axis in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0.3, -0.8, 0.52), (-1, -1, -1)]:
        v = np.pi * np.asarray(axis, float) / np.linalg.norm(axis)
        m = Rotation.from_rotvec(v).as_matrix()
        got = so3.log(m)
        assert np.isclose(np.linalg.norm(got), np.pi, atol=1e-15)
        assert min(np.abs(got - v).max(), np.abs(got + v).max()) < 1e-15


@pytest.mark.parametrize("case", ["float32", "small", "noisy", "reflected", "scaled"])
def test_nearest_rotation_matches_svd(case):
    rng = np.random.default_rng(2)
    r = Rotation.random(2 * 24, random_state=3).as_matrix().reshape(2, 24, 3, 3)
    m = {"float32": r.astype(np.float32).astype(np.float64),          # the network's outputs: series
         "small": r + rng.normal(0, 2e-7, r.shape),                    # series, its E² term matters
         "noisy": r + rng.normal(0, 1e-3, r.shape),                    # beyond the series: SVD
         "reflected": r * np.array([1, 1, -1])[:, None],               # det −1
         "scaled": 1.7 * r + rng.normal(0, 0.05, r.shape)}[case]
    if case != "float32":
        m[0, :12] = r[0, :12]                                          # a mix: both paths in one call
    got = so3.nearest_rotation(m)
    assert got.shape == m.shape
    np.testing.assert_allclose(got, _svd_projection(m), rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.swapaxes(got, -1, -2) @ got, np.broadcast_to(np.eye(3), got.shape), atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=1e-14)


def test_nearest_rotation_of_a_scaled_rotation_is_exact_on_both_paths():
    # (1+δ)·R has the exact answer R. δ ≤ 9e-7 (MᵀM − I ≈ 2δ ≤ 1.8e-6) takes the series, whose
    # E² term is then ~1e-12: a wrong coefficient shows. δ up to 5e-5 takes the SVD: a series
    # stretched there would be off by ~E³ ≈ 1e-13.
    r = Rotation.random(400, random_state=6).as_matrix()
    delta = np.concatenate([np.linspace(1e-7, 9e-7, 200), np.linspace(5e-6, 5e-5, 200)])
    np.testing.assert_allclose(so3.nearest_rotation(r * (1 + delta)[:, None, None]), r, rtol=0, atol=3e-15)


def _scipy_one_euro_step(r_hat, w_hat, r, dt, min_cutoff, beta, d_cutoff, cutoff_scale):
    """The step's former formulation through scipy's Rotation (quaternions), kept as reference."""
    r_hat, r = Rotation.from_matrix(r_hat), Rotation.from_matrix(r)
    delta = (r_hat.inv() * r).as_rotvec()
    a_d = smoothing_factor(d_cutoff, dt)[:, None]
    w_hat = a_d * (delta / dt[:, None]) + (1 - a_d) * w_hat
    a = smoothing_factor(_cutoff(min_cutoff, beta, np.linalg.norm(w_hat, axis=-1), cutoff_scale), dt)[:, None]
    return (r_hat * Rotation.from_rotvec(a * delta)).as_matrix(), w_hat


def test_so3_one_euro_step_matches_scipy_formulation():
    rng = np.random.default_rng(4)
    n = 600
    r_hat = Rotation.random(n, random_state=5)
    # Measurement = estimate · a relative rotation of every size: uniform, tiny, 0, near π.
    ang = np.concatenate([rng.uniform(0, np.pi, 300), 10.0 ** rng.uniform(-12, -2, 150), [0.0] * 10,
                          np.pi - 10.0 ** rng.uniform(-6, -1, 140)])
    r = r_hat * Rotation.from_rotvec(_axes(rng, n) * ang[:, None])
    w_hat = rng.normal(0, 2, (n, 3))
    dt = rng.choice([1 / 30, 0.1, 0.5], n)
    scale = rng.uniform(0.1, 1, n)
    for s in (None, scale):
        got_r, got_w = so3_one_euro_step(r_hat.as_matrix(), w_hat, r.as_matrix(), dt, 1.5, 0.5, 1.0, s)
        ref_r, ref_w = _scipy_one_euro_step(r_hat.as_matrix(), w_hat, r.as_matrix(), dt, 1.5, 0.5, 1.0, s)
        np.testing.assert_allclose(got_w, ref_w, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got_r, ref_r, rtol=0, atol=1e-13)
    # A scalar dt broadcasts over the rotations.
    got_r, _ = so3_one_euro_step(r_hat.as_matrix(), w_hat, r.as_matrix(), 0.1, 1.5, 0.5, 1.0)
    ref_r, _ = _scipy_one_euro_step(r_hat.as_matrix(), w_hat, r.as_matrix(), np.full(n, 0.1), 1.5, 0.5, 1.0, None)
    np.testing.assert_allclose(got_r, ref_r, rtol=0, atol=1e-13)
