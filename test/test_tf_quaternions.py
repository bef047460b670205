"""tf_frames.quaternions_xyzw (one matrix product) against SciPy's Rotation.from_matrix."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pare_ros.ros.tf_frames import quaternions_xyzw


def scipy_xyzw(m):
    q = Rotation.from_matrix(m.reshape(-1, 3, 3), assume_valid=True).as_quat()
    return np.where(q[:, 3:4] < 0, -q, q)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equals_scipy_on_random_and_half_turn_rotations(dtype):
    half_turns = [[np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi], [np.pi / np.sqrt(2), np.pi / np.sqrt(2), 0],
                  [np.pi - 1e-9, 1e-9, 0], [0, 0, 0], [1e-12, 0, 0], [0, -np.pi + 1e-7, 0]]
    m = np.concatenate([Rotation.random(2000, random_state=4).as_matrix(),
                        Rotation.from_rotvec(half_turns).as_matrix()]).astype(dtype)   # float32: near-rotations
    q = quaternions_xyzw(m)
    np.testing.assert_allclose(q, scipy_xyzw(m.astype(np.float64)), rtol=0, atol=1e-15)
    assert (q[:, 3] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-15)
    # and it is the rotation: back to the matrix
    np.testing.assert_allclose(Rotation.from_quat(q).as_matrix(), m, atol=1e-6 if dtype == np.float32 else 1e-14)


def test_shapes():
    assert quaternions_xyzw(np.eye(3)).tolist() == [0.0, 0.0, 0.0, 1.0]
    assert quaternions_xyzw(np.tile(np.eye(3), (2, 5, 1, 1))).shape == (2, 5, 4)
    assert quaternions_xyzw(np.zeros((0, 3, 3))).shape == (0, 4)
