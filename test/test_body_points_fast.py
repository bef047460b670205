"""~/body_points built through a reused buffer: every message keeps its own data."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs not installed")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from pare_ros.ros.body_points import body_points_msg, points_from_msg  # noqa: E402


def _expected(people, stride):
    xyz = np.concatenate([np.asarray(v, np.float32)[::stride] for _, v in people])
    ids = np.concatenate([np.full(len(v[::stride]), t & 0xFFFFFFFF, np.uint32) for t, v in people])
    return xyz, ids


def test_consecutive_clouds_are_independent_and_exact():
    rng = np.random.default_rng(4)
    frames = [[(7, rng.normal(size=(6890, 3))), (2 ** 32 + 3, rng.normal(size=(6890, 3)).astype(np.float32))],
              [(9, rng.normal(size=(100, 3)))],                     # smaller than the one before
              [(1, rng.normal(size=(6890, 3))) for _ in range(3)]]
    msgs = [(body_points_msg(Header(frame_id="cam"), people, stride), people, stride)
            for people, stride in zip(frames, (1, 1, 3))]
    for msg, people, stride in msgs:          # earlier messages untouched by later builds
        xyz, ids = points_from_msg(deserialize_message(serialize_message(msg), PointCloud2))
        exp_xyz, exp_ids = _expected(people, stride)
        np.testing.assert_array_equal(xyz, exp_xyz)
        np.testing.assert_array_equal(ids, exp_ids)
        assert msg.width == len(exp_ids) and msg.row_step == 16 * len(exp_ids)
