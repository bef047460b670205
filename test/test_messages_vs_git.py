"""The frame's message builders give the same bytes as at commit 2f6e58a (before their per-call
overhead was cut): ~/bodies (SmplBodyArray) and /tf (TFMessage) CDR and the planner summary,
for random bodies and for the inputs a running FrameProcessor hands them. The old modules are
loaded from git (test/git_modules.py); skipped without the history."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")

from scipy.spatial.transform import Rotation  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

import git_modules  # noqa: E402
from test_ros_tf_markers import make_fake_body  # noqa: E402
from pare_ros import world_frame  # noqa: E402
from pare_ros.constants import SMPL_PARENTS  # noqa: E402
from pare_ros.ros import body_array, body_messages, tf_frames  # noqa: E402
from pare_ros.tf_tree import RigidTransform  # noqa: E402

BASE = "2f6e58a"
NEW = dict(tf_frames=tf_frames, body_messages=body_messages, body_array=body_array, world_frame=world_frame)


@pytest.fixture(scope="module")
def old():
    try:
        m = git_modules.load(BASE)
    except RuntimeError as exc:
        pytest.skip(f"no git history: {exc}")
    return dict(tf_frames=m.tf_frames, body_messages=m.body_messages, body_array=m.body_array,
                world_frame=m.world_frame)


@dataclasses.dataclass
class Track:
    """A TrackView as the node's tracker gives it."""

    track_id: int
    body_id: str
    state: int
    age: float
    time_since_update: float
    box: np.ndarray
    score: float
    confidence: float
    detection_index: object = 0


def random_people(rng, people: int, float64: bool):
    """(track, body) pairs: random poses (some joints exactly the identity, some entries -0.0),
    joints and keypoints partly outside the image or behind the camera, coasting and tentative
    tracks; ``float64``: the 3D fields as float64 (as smoothed estimates may be)."""
    out = []
    for i in range(people):
        body = make_fake_body(int(rng.integers(1 << 30)))
        rotmats = np.array(body.rotmats)
        for j in rng.choice(24, 3, replace=False):
            rotmats[j] = np.eye(3)
        rotmats[rotmats == 0] = -0.0 if i % 2 else 0.0
        joints2d = np.array(body.joints2d)
        joints2d[rng.choice(24, 4, replace=False)] = rng.uniform(-100, 800, (4, 2))
        joints3d = np.array(body.joints3d)
        joints3d[rng.choice(24, 2, replace=False), 2] *= -1
        cast = np.float64 if float64 else np.float32
        body = dataclasses.replace(
            body, rotmats=rotmats.astype(cast), joints3d=joints3d.astype(cast), joints2d=joints2d.astype(np.float32),
            transl=np.asarray(body.transl, cast), rest_joints=np.asarray(body.rest_joints, cast),
            axis_angle=np.asarray(body.axis_angle, cast), betas=np.asarray(body.betas, cast),
            keypoints2d=rng.uniform(-50, 700, (49, 2)).astype(np.float32), score=float(rng.uniform(0.3, 1.0)),
            part_visibility=rng.uniform(size=24).astype(np.float32), truncation=float(rng.uniform()))
        state = int(rng.integers(0, 3))
        track = Track(int(rng.integers(1, 2 ** 32)), f"b{'x' * int(rng.integers(0, 5))}{i}", state,
                      float(rng.uniform(0, 9)), 0.0 if state != 2 else float(rng.uniform(0, 1)),
                      rng.uniform(0, 640, 4), float(rng.choice([rng.uniform(0.3, 1), 2.5, 0.0, -0.0])),
                      float(rng.uniform(0, 1)),
                      None if state == 2 else i)
        out.append((track, body))
    return out


def build(m: dict, people, header, intrinsics, velocities: dict, covs: dict, rotmats: bool, vertices: bool,
          transform, offsets_stride: int, joint_frames: bool = True, head_frame: bool = True):
    """What FrameProcessor.process does with the people: (~/bodies bytes, /tf bytes, planner)."""
    tracks, bodies = [t for t, _ in people], [b for _, b in people]
    transforms = m["tf_frames"].bodies_transforms(bodies, [t.body_id for t in tracks], header, prefix="smpl_",
                                                  parents=np.array(SMPL_PARENTS), joint_frames=joint_frames,
                                                  head_frame=head_frame)
    columns = m["body_messages"].body_columns(
        bodies, tracks, publish_rotmats=rotmats, publish_vertices=vertices, image_size=(640, 480),
        velocities=[velocities.get(t.track_id) for t in tracks], velocity_frame="odom",
        roots=m["tf_frames"].body_roots(transforms, len(people)))
    array = m["body_array"].SmplBodyArrayBundle(header, columns, (640, 480), intrinsics, "neutral", "pare/cpu")
    array.latency, array.frames_skipped = 0.0123, 3
    planner = m["world_frame"].planner_frame(people, velocities, 12.5, header.frame_id, (640, 480), transform,
                                             "odom" if transform is not None else "", "", offsets_stride,
                                             velocity_covs=covs)
    return array.serialize(), array.cdr(), transforms.serialize(), transforms.cdr(), planner


def assert_same_planner(a, b):
    assert (a.stamp, a.frame_id, a.camera_frame, a.image_size, a.fallback) == \
        (b.stamp, b.frame_id, b.camera_frame, b.image_size, b.fallback)
    assert len(a.tracks) == len(b.tracks)
    for x, y in zip(a.tracks, b.tracks):
        for name, u in vars(x).items():
            v = getattr(y, name)
            assert (u is None) == (v is None), name
            if u is not None:         # bit for bit (-0.0 is not 0.0 on the wire)
                u, v = np.asarray(u), np.asarray(v)
                assert (u.dtype, u.shape, u.tobytes()) == (v.dtype, v.shape, v.tobytes()), name


def header(frame="cam_optical"):
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = 1_700_000_123, 987_654_321
    return h


@pytest.mark.parametrize("seed", range(12))
def test_random_frames_give_the_old_bytes(old, seed):
    rng = np.random.default_rng(seed)
    people = random_people(rng, int(rng.integers(1, 9)), float64=seed % 2 == 1)
    velocities = {t.track_id: (None if k % 3 == 2 else rng.normal(size=3)) for k, (t, _) in enumerate(people)}
    if len(people) > 3:                                 # a non-finite velocity: published as not valid
        velocities[people[3][0].track_id] = np.array([0.1, np.inf if seed % 2 else np.nan, 0.3])
    covs = {t.track_id: np.eye(3) * 0.1 for t, _ in people if velocities[t.track_id] is not None}
    transform = (RigidTransform(Rotation.random(random_state=seed).as_matrix(), rng.normal(size=3))
                 if seed % 3 else None)
    args = (people, header("/cam_optical" if seed % 4 == 0 else "cam_optical"), (500.0, 510.5, 320.25, 240.0),
            velocities, covs, seed % 2 == 0, seed % 4 == 1, transform, 100 if seed % 3 == 1 else 0)
    kwargs = dict(joint_frames=seed % 5 != 4, head_frame=seed % 7 != 6)
    got, want = build(NEW, *args, **kwargs), build(old, *args, **kwargs)
    assert got[:4] == want[:4]
    assert_same_planner(got[4], want[4])


def test_empty_frame_gives_the_old_bytes(old):
    args = ([], header(), (500.0, 510.5, 320.25, 240.0), {}, {}, False, False, None, 0)
    got, want = build(NEW, *args), build(old, *args)
    assert got[:4] == want[:4]
    assert_same_planner(got[4], want[4])


@pytest.mark.parametrize("people", [1, 3])
def test_the_node_pipelines_inputs_give_the_old_bytes(old, people):
    """The inputs a FrameProcessor (zero-cost network, tracking and smoothing) hands the builders."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import ab_messages

    seen = ab_messages.capture(ab_messages.make_estimator("cpu", people), people, frames=4)
    (_, a), (_, b) = (ab_messages.frame(type("M", (), m), seen) for m in (NEW, old))
    assert a[:2] == b[:2]
    assert_same_planner(a[2], b[2])
