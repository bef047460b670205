"""Rotation conversions against SciPy's independent implementation."""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from pare_ros.geometry import (axis_angle_to_rotmat, rot6d_to_rotmat, rotmat_to_axis_angle,
                               rotmat_to_quaternion, rotmat_to_rot6d)


def _random_rotations(n: int, seed: int = 0) -> np.ndarray:
    rots = Rotation.random(n, random_state=seed).as_matrix()
    # Include the hard cases: identity, exactly π about each axis and near-π.
    special = [np.eye(3)] + [Rotation.from_rotvec(np.pi * a).as_matrix() for a in np.eye(3)]
    special.append(Rotation.from_rotvec([0, np.pi - 1e-6, 0]).as_matrix())
    return np.concatenate([rots, np.stack(special)])


def test_rotmat_to_axis_angle_matches_scipy():
    rots = _random_rotations(500)
    ours = rotmat_to_axis_angle(rots)
    back = Rotation.from_rotvec(ours).as_matrix()
    np.testing.assert_allclose(back, rots, atol=1e-9)
    np.testing.assert_array_less(np.linalg.norm(ours, axis=1), np.pi + 1e-9)


def test_axis_angle_to_rotmat_matches_scipy():
    rng = np.random.default_rng(1)
    aa = rng.normal(size=(300, 3)) * rng.uniform(0, 3, size=(300, 1))
    aa = np.concatenate([aa, np.zeros((1, 3)), [[1e-10, 0, 0]]])
    ours = axis_angle_to_rotmat(torch.from_numpy(aa)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(aa).as_matrix(), atol=1e-9)


def test_quaternion_convention_is_xyzw_like_scipy():
    rots = _random_rotations(100, seed=2)
    ours = rotmat_to_quaternion(torch.from_numpy(rots)).numpy()
    ref = Rotation.from_matrix(rots).as_quat()
    ref = np.where(ref[:, 3:] < 0, -ref, ref)
    # q and −q are the same rotation; compare up to that sign at w ≈ 0.
    same = np.minimum(np.abs(ours - ref).max(1), np.abs(ours + ref).max(1))
    assert same.max() < 1e-9


def test_rot6d_roundtrip_and_interleaved_layout():
    rots = torch.from_numpy(_random_rotations(50, seed=3))
    np.testing.assert_allclose(rot6d_to_rotmat(rotmat_to_rot6d(rots)).numpy(), rots.numpy(), atol=1e-12)
    # The 6 numbers are a 3×2 matrix stored row-major: (x0, x2, x4) is the first column.
    r = rot6d_to_rotmat(torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]], dtype=torch.float64))
    np.testing.assert_allclose(r[0].numpy(), np.eye(3), atol=1e-12)
    r = rot6d_to_rotmat(torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0, 0.0]], dtype=torch.float64))
    np.testing.assert_allclose(r[0, :, 0].numpy(), [0, 1, 0], atol=1e-12)


def test_rotmat_to_axis_angle_equals_scipy_rotvec_near_pi_and_batched():
    """The vector itself (not only its rotation) is SciPy's, including up to 1e-7 below π about
    random axes, for float32 inputs and any leading shape."""
    rng = np.random.default_rng(4)
    axes = rng.normal(size=(300, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0, np.pi, 200), np.pi - 10.0 ** -rng.uniform(1, 7, 100)])
    rotvecs = axes * angles[:, None]
    rots = Rotation.from_rotvec(rotvecs).as_matrix()
    ours = rotmat_to_axis_angle(rots.reshape(10, 30, 3, 3))
    assert ours.shape == (10, 30, 3) and ours.dtype == np.float64
    np.testing.assert_allclose(ours.reshape(-1, 3), rotvecs, atol=1e-9)
    single = rots.astype(np.float32)
    want = Rotation.from_matrix(single.astype(np.float64)).as_rotvec()
    np.testing.assert_allclose(rotmat_to_axis_angle(single), want, atol=2e-6)
