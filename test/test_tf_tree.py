"""pare_ros.tf_tree on synthetic TF trees of a moving robot (known answers: the analytic poses).

Tree: odom → base_link (robot drives an arc: v = 1 m/s, yaw rate 0.5 rad/s, sampled at 50 Hz),
base_link → camera_link (static, mast 1.2 m up, 0.1 m forward, pitched down 0.2 rad),
camera_link → camera_optical (static REP-103 optical rotation), and a pan-tilt head variant
where the camera link itself is dynamic.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pare_ros.tf_tree import ExtrapolationError, MissingLinkError, RigidTransform, TransformTree

V, W = 1.0, 0.5
OPTICAL = Rotation.from_euler("ZYX", [-math.pi / 2, 0, -math.pi / 2])   # x right, y down, z fwd
MAST = RigidTransform(Rotation.from_euler("y", 0.2).as_matrix(), np.array([0.1, 0.0, 1.2]))


def base_pose(t: float) -> RigidTransform:
    """odom → base_link at t: an arc starting at the origin facing +x."""
    yaw = W * t
    pos = np.array([V / W * math.sin(yaw), V / W * (1 - math.cos(yaw)), 0.0])
    return RigidTransform(Rotation.from_euler("z", yaw).as_matrix(), pos)


def optical_in_odom(t: float) -> RigidTransform:
    return base_pose(t) @ MAST @ RigidTransform(OPTICAL.as_matrix(), np.zeros(3))


def robot_tree(t_end: float = 2.0, rate: float = 50.0, **kw) -> TransformTree:
    tree = TransformTree(**kw)
    tree.set_transform("base_link", "camera_link", 0.0, Rotation.from_matrix(MAST.rotation).as_quat(),
                       MAST.translation, static=True)
    tree.set_transform("camera_link", "camera_optical", 0.0, OPTICAL.as_quat(), np.zeros(3), static=True)
    for t in np.arange(0.0, t_end + 1e-9, 1.0 / rate):
        pose = base_pose(t)
        tree.set_transform("odom", "base_link", t, Rotation.from_matrix(pose.rotation).as_quat(), pose.translation)
    return tree


def assert_pose_close(a: RigidTransform, b: RigidTransform, pos_tol: float, rot_tol: float) -> None:
    np.testing.assert_allclose(a.translation, b.translation, atol=pos_tol)
    angle = Rotation.from_matrix(a.rotation.T @ b.rotation).magnitude()
    assert angle < rot_tol, angle


def test_chain_at_sample_stamps_is_exact():
    tree = robot_tree()
    for t in (0.0, 0.5, 1.24, 2.0):
        assert_pose_close(tree.lookup("odom", "camera_optical", t), optical_in_odom(t), 1e-9, 1e-9)


def test_interpolation_between_samples_follows_the_arc():
    tree = robot_tree()
    for t in (0.013, 0.737, 1.991):
        # lerp of an arc sampled every 20 ms: chord error R(1 - cos(w dt / 2)) ≈ 1e-4 m
        assert_pose_close(tree.lookup("odom", "camera_optical", t), optical_in_odom(t), 2e-4, 1e-6)


def test_lookup_direction_maps_points_from_source_into_target():
    tree = robot_tree()
    t = 1.0
    p_cam = np.array([0.2, -0.1, 3.0])              # a point 3 m in front of the camera
    expected = optical_in_odom(t).apply(p_cam)
    np.testing.assert_allclose(tree.lookup("odom", "camera_optical", t).apply(p_cam), expected, atol=1e-9)
    back = tree.lookup("camera_optical", "odom", t).apply(expected)
    np.testing.assert_allclose(back, p_cam, atol=1e-9)


def test_bounded_extrapolation_continues_the_motion():
    tree = robot_tree(max_extrapolation=0.1)
    # 60 ms past the newest sample: constant velocity from the last two samples
    assert_pose_close(tree.lookup("odom", "camera_optical", 2.06), optical_in_odom(2.06), 2e-3, 1e-6)
    with pytest.raises(ExtrapolationError) as err:
        tree.lookup("odom", "camera_optical", 2.5)
    assert err.value.age == pytest.approx(0.5)
    assert "0.500 s" in str(err.value) and "odom" in str(err.value) and "base_link" in str(err.value)


def test_a_lookup_can_refuse_extrapolation():
    tree = robot_tree(max_extrapolation=0.1)
    with pytest.raises(ExtrapolationError):
        tree.lookup("odom", "camera_optical", 2.05, max_extrapolation=0.0)
    tree.lookup("odom", "camera_optical", 2.0, max_extrapolation=0.0)     # data at the stamp


def test_stamp_before_the_buffer_is_refused():
    tree = robot_tree(cache_time=1.0)          # keeps only the last second
    tree.lookup("odom", "camera_optical", 1.5)
    with pytest.raises(ExtrapolationError) as err:
        tree.lookup("odom", "camera_optical", 0.5)
    assert err.value.age < 0


def test_missing_link_names_the_frames():
    tree = robot_tree()
    with pytest.raises(MissingLinkError, match="map"):
        tree.lookup("map", "camera_optical", 1.0)
    tree.set_transform("map", "other_robot", 0.0, [0, 0, 0, 1], [0, 0, 0], static=True)
    with pytest.raises(MissingLinkError, match="tree of 'odom'"):
        tree.lookup("map", "camera_optical", 1.0)
    # map → odom arrives: the chain is complete
    tree.set_transform("map", "odom", 0.0, [0, 0, 0, 1], [5.0, 0, 0], static=True)
    np.testing.assert_allclose(tree.lookup("map", "camera_optical", 1.0).translation,
                               optical_in_odom(1.0).translation + [5.0, 0, 0], atol=1e-9)


def test_static_chain_at_any_stamp():
    tree = robot_tree()
    pose = tree.lookup("base_link", "camera_optical", 1e9)
    assert_pose_close(pose, MAST @ RigidTransform(OPTICAL.as_matrix(), np.zeros(3)), 1e-12, 1e-9)


def test_pan_tilt_head_two_dynamic_edges():
    """Both the base and the head move: each dynamic edge is interpolated at the stamp."""
    tree = TransformTree()

    def head(t):
        return RigidTransform(Rotation.from_euler("z", 0.8 * math.sin(t)).as_matrix(), np.array([0, 0, 1.0]))

    for t in np.arange(0, 3.0, 0.02):
        b = base_pose(t)
        tree.set_transform("odom", "base_link", t, Rotation.from_matrix(b.rotation).as_quat(), b.translation)
    for t in np.arange(0.005, 3.0, 0.033):   # head published at another rate, other phase
        h = head(t)
        tree.set_transform("base_link", "head", t, Rotation.from_matrix(h.rotation).as_quat(), h.translation)
    for t in (0.5, 1.3, 2.7):
        assert_pose_close(tree.lookup("odom", "head", t), base_pose(t) @ head(t), 3e-4, 5e-4)


def test_out_of_order_samples_and_bad_input():
    tree = TransformTree()
    for t in (1.0, 0.0, 0.5):
        tree.set_transform("odom", "base", t, [0, 0, 0, 1], [t, 0, 0])
    assert tree.lookup("odom", "base", 0.25).translation[0] == pytest.approx(0.25)
    with pytest.raises(ValueError):
        tree.set_transform("odom", "base", 2.0, [0, 0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError):
        tree.set_transform("odom", "odom", 2.0, [0, 0, 0, 1], [0, 0, 0])
    assert tree.latest_common_stamp("odom", "base") == 1.0
    tree.clear()
    with pytest.raises(MissingLinkError):
        tree.lookup("odom", "base", 0.5)
