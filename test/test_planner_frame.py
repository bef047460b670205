"""world_frame.planner_frame (all people at once) against the per-person loop it replaced."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from test_ros_tf_markers import make_fake_body
from pare_ros.tf_tree import RigidTransform
from pare_ros.world_frame import PlannerFrame, PlannerTrack, planner_frame


def reference_planner_frame(people, velocities, stamp, camera_frame, image_size, transform=None,
                            world_frame="", fallback="", offsets_stride=0, velocity_covs=None):
    """One person at a time, straight from PlannerTrack's documentation."""
    t = transform if transform is not None else RigidTransform.identity()
    out = PlannerFrame(float(stamp), world_frame if transform is not None else camera_frame, camera_frame,
                       tuple(image_size), fallback=fallback)
    w, h = image_size
    for view, body in people:
        root_cam = np.asarray(body.joints3d[0], dtype=np.float64)
        vel = velocities.get(view.track_id)
        coasting = int(view.state) == 2
        vis = np.asarray(body.part_visibility, dtype=np.float64)
        reliability = 0.0 if coasting else float(np.clip(view.score * float(np.mean(vis)), 0.0, 1.0))
        kp = np.asarray(body.keypoints2d, dtype=np.float64).reshape(-1, 2)
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)
        offsets = None
        if offsets_stride > 0 and body.vertices is not None:
            offsets = (np.asarray(body.vertices, dtype=np.float64)[::offsets_stride] - root_cam) @ t.rotation.T
        out.tracks.append(PlannerTrack(
            track_id=int(view.track_id), body_id=str(view.body_id), state=int(view.state),
            confirmed=int(view.state) in (1, 2), position=t.rotation @ root_cam + t.translation,
            velocity=None if vel is None else np.asarray(vel, dtype=np.float64).reshape(3),
            reliability=reliability, box=np.asarray(view.box, dtype=np.float64).reshape(4),
            keypoints2d=kp, keypoint_conf=np.where(inside, 0.0 if coasting else float(view.score), 0.0),
            body_offsets=offsets, velocity_cov=None if vel is None else (velocity_covs or {}).get(view.track_id)))
    return out


def people(n):
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        body = make_fake_body(i)
        body.keypoints2d = rng.uniform(-50, 700, size=(49, 2))       # some outside 640×480
        view = SimpleNamespace(track_id=10 + i, body_id=f"b{i}", state=i % 3, score=0.3 + 0.2 * i,
                               box=rng.uniform(0, 400, 4).tolist())
        out.append((view, body))
    return out


def assert_same(a, b):
    assert (a.stamp, a.frame_id, a.camera_frame, a.image_size, a.fallback) == \
        (b.stamp, b.frame_id, b.camera_frame, b.image_size, b.fallback)
    assert len(a.tracks) == len(b.tracks)
    for x, y in zip(a.tracks, b.tracks):
        for name in ("track_id", "body_id", "state", "confirmed"):
            assert getattr(x, name) == getattr(y, name), name
        assert x.reliability == pytest.approx(y.reliability, abs=1e-12)
        for name in ("position", "velocity", "box", "keypoints2d", "keypoint_conf", "body_offsets", "velocity_cov"):
            u, v = getattr(x, name), getattr(y, name)
            assert (u is None) == (v is None), name
            if u is not None:
                np.testing.assert_allclose(u, v, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("n", [0, 1, 4])
@pytest.mark.parametrize("world", [False, True])
def test_planner_frame_equals_the_per_person_reference(n, world):
    group = people(n)
    velocities = {10 + i: (None if i == 1 else np.array([0.1 * i, -0.2, 0.3])) for i in range(n)}
    covs = {10 + i: np.eye(3) * i for i in range(n)}
    transform = RigidTransform(Rotation.from_rotvec([0.1, -0.4, 0.2]).as_matrix(), np.array([1.0, 2.0, -0.5])) \
        if world else None
    for stride in (0, 7):
        args = (group, velocities, 12.5, "cam", (640, 480), transform, "odom" if world else "",
                "" if world else "no tf", stride)
        assert_same(planner_frame(*args, velocity_covs=covs), reference_planner_frame(*args, velocity_covs=covs))
    coasting = planner_frame(group, velocities, 1.0, "cam", (640, 480))
    assert all(t.reliability == 0.0 and not t.keypoint_conf.any() for t in coasting.tracks if t.state == 2)
