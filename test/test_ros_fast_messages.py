"""The frame-at-once message builders against the per-person ones and the checked message
constructors: same messages, also through the wire (in-process, real message classes, no DDS)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3  # noqa: E402
from pare_ros.msg import SmplBody  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from test_ros_tf_markers import make_fake_body  # noqa: E402
from pare_ros.ros import tf_frames  # noqa: E402
from pare_ros.ros.body_messages import smpl_body_msg, smpl_body_msgs  # noqa: E402
from pare_ros.ros.message_builders import bulk_builder  # noqa: E402


class View:
    def __init__(self, i):
        self.track_id, self.body_id, self.state = 7 + i, f"b{i}x", i % 3
        self.age, self.time_since_update, self.score = 1.5 * i, 0.1 * i, 0.5 + 0.1 * i


def header():
    h = Header(frame_id="/cam_optical")
    h.stamp.sec, h.stamp.nanosec = 12, 345
    return h


def test_bulk_built_transform_serialises_like_the_checked_constructor():
    checked = TransformStamped(header=Header(stamp=Time(sec=3, nanosec=4), frame_id="a"), child_frame_id="b",
                               transform=Transform(translation=Vector3(x=0.1, y=-2.0, z=3e5),
                                                   rotation=Quaternion(x=0.5, y=-0.5, z=0.5, w=0.5)))
    make = bulk_builder(TransformStamped, ("header", "child_frame_id", "transform"))
    fast = make(bulk_builder(Header, ("stamp", "frame_id"))(bulk_builder(Time, ("sec", "nanosec"))(3, 4), "a"), "b",
                bulk_builder(Transform, ("translation", "rotation"))(
                    bulk_builder(Vector3, ("x", "y", "z"))(0.1, -2.0, 3e5),
                    bulk_builder(Quaternion, ("x", "y", "z", "w"))(0.5, -0.5, 0.5, 0.5)))
    assert fast == checked
    # Byte-equal except in the padding, which Fast CDR leaves uninitialised (so comparing all
    # bytes depended on the heap's state: flaky); positions from the struct-based reference.
    from test_tf_message import reference_cdr

    a, b = serialize_message(TFMessage(transforms=[fast])), serialize_message(TFMessage(transforms=[checked]))
    reference, padding = reference_cdr(TFMessage(transforms=[checked]))
    assert len(a) == len(b) == len(reference)
    assert all(x == y == z for i, (x, y, z) in enumerate(zip(a, b, reference)) if i not in padding)


@pytest.mark.parametrize("joint_frames,head_frame", [(True, True), (False, True), (True, False)])
def test_bodies_transforms_equal_each_body_transforms_in_order(joint_frames, head_frame):
    bodies = [make_fake_body(seed) for seed in range(4)]
    ids = [f"id{seed}" for seed in range(4)]
    together = tf_frames.bodies_transforms(bodies, ids, header(), prefix="p_", joint_frames=joint_frames,
                                           head_frame=head_frame)
    one_by_one = [t for b, i in zip(bodies, ids)
                  for t in tf_frames.body_transforms(b, i, header(), prefix="p_", joint_frames=joint_frames,
                                                     head_frame=head_frame)]
    assert len(together) == len(one_by_one) == 4 * (1 + head_frame + 24 * joint_frames)
    assert [(t.header.frame_id, t.child_frame_id) for t in together] == \
        [(t.header.frame_id, t.child_frame_id) for t in one_by_one]
    a = np.array([[t.transform.translation.x, t.transform.rotation.w, t.transform.rotation.x] for t in together])
    b = np.array([[t.transform.translation.x, t.transform.rotation.w, t.transform.rotation.x] for t in one_by_one])
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert serialize_message(TFMessage(transforms=together.to_msgs()))   # valid for the serialiser
    assert len(tf_frames.bodies_transforms([], [], header())) == 0


def test_bodies_transforms_name_the_non_finite_body():
    bad = make_fake_body(2)
    bad.rotmats[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="body b1: non-finite"):
        tf_frames.bodies_transforms([make_fake_body(1), bad], ["b0", "b1"], header())


@pytest.mark.parametrize("options", [{}, {"publish_rotmats": True, "publish_vertices": True}])
def test_smpl_body_msgs_serialise_like_smpl_body_msg_per_person(options):
    bodies = [make_fake_body(seed) for seed in range(3)]
    bodies[1].joints2d[4] = (-3.0, 10.0)                              # outside: confidence 0
    views = [View(0), None, View(2)]
    velocities = [(0.1, 0.2, 0.3), None, (np.inf, 0.0, 0.0)]   # inf: invalid, yet == itself
    together = smpl_body_msgs(bodies, views, image_size=(640, 480), velocities=velocities,
                              velocity_frame="odom", **options)
    for body, view, velocity, msg in zip(bodies, views, velocities, together):
        single = smpl_body_msg(body, track_view=view, image_size=(640, 480), velocity=velocity,
                               velocity_frame="odom", **options)
        assert msg == single
        # Through the wire (CDR padding bytes are not initialised: compare messages, not bytes).
        assert deserialize_message(serialize_message(msg), SmplBody) == single
    assert together[1].joint_confidence[4] == 0.0 and not together[2].velocity_valid
    assert smpl_body_msgs([]) == []


def reference_smpl_body(body, view, velocity, velocity_frame, image_size, rotmats_on, vertices_on,
                        joint_confidence=None):
    """SmplBody through the checked constructor, field by field, from the .msg comments."""
    import torch
    from geometry_msgs.msg import Point, Pose
    from pare_ros.geometry import rotmat_to_quaternion

    f32 = lambda x: float(np.float32(x))                               # noqa: E731
    score = body.score if view is None else view.score
    if joint_confidence is None:
        w, h = image_size
        u, v = body.joints2d[:, 0], body.joints2d[:, 1]
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (body.joints3d[:, 2] > 0)
        track_confidence = getattr(view, "confidence", None)           # default: the detection's score
        track_confidence = body.score if track_confidence is None else track_confidence
        joint_confidence = float(track_confidence) * np.asarray(body.part_visibility, dtype=np.float64) * inside
    rotation = np.asarray(body.rotmats[0], dtype=np.float64) @ tf_frames.REP_TO_SMPL
    q = rotmat_to_quaternion(torch.from_numpy(rotation)).numpy()      # x, y, z, w; w ≥ 0
    mid = 0.5 * (body.joints3d[1].astype(np.float64) + body.joints3d[2])
    arr = lambda x: np.asarray(x, dtype=np.float32).reshape(-1)         # noqa: E731
    valid = velocity is not None and bool(np.isfinite(velocity).all())
    return SmplBody(
        body_id="" if view is None else view.body_id, track_id=0 if view is None else view.track_id,
        tracking_state=1 if view is None else view.state, age=0.0 if view is None else f32(view.age),
        time_since_update=0.0 if view is None else f32(view.time_since_update), detection_score=f32(score),
        bbox=arr(body.box), crop=arr([body.crop.cx, body.crop.cy, body.crop.side]), joints_2d=arr(body.joints2d),
        betas=arr(body.betas), global_orient=arr(body.axis_angle[0]), body_pose=arr(body.axis_angle[1:]),
        transl=arr(body.transl), rotmats=arr(body.rotmats).tolist() if rotmats_on else [],
        cam_crop=arr(body.cam_crop), joints_3d=arr(body.joints3d),
        root=Pose(position=Point(x=mid[0], y=mid[1], z=mid[2]),
                  orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])),
        root_velocity=Vector3() if velocity is None else Vector3(x=float(velocity[0]), y=float(velocity[1]),
                                                                 z=float(velocity[2])),
        velocity_frame=velocity_frame if velocity is not None else "", velocity_valid=valid,
        vertices=arr(body.vertices).tolist() if vertices_on else [],
        part_visibility=arr(body.part_visibility), joint_confidence=arr(joint_confidence),
        truncation=f32(body.truncation))


def assert_same_body(msg, ref):
    """Equal in every field; the root quaternion to 1e-12 (SciPy vs pare_ros.geometry's Torch)."""
    got = deserialize_message(serialize_message(msg), SmplBody)
    for name in ("x", "y", "z", "w"):
        assert getattr(got.root.orientation, name) == pytest.approx(getattr(ref.root.orientation, name), abs=1e-12)
        setattr(got.root.orientation, name, getattr(ref.root.orientation, name))
    assert got == ref


@pytest.mark.parametrize("rotmats_on,vertices_on", [(False, False), (True, True)])
def test_smpl_body_msgs_equal_the_checked_reference(rotmats_on, vertices_on):
    bodies = [make_fake_body(seed) for seed in range(4)]
    bodies[1].joints2d[4] = (-3.0, 10.0)                              # outside: confidence 0
    bodies[2].joints3d[7, 2] = -1.0                                   # behind the camera
    views = [View(0), None, View(2), View(3)]
    views[3].track_id, views[2].confidence = 2 ** 32 - 1, 0.25        # a coasting track's decayed one
    velocities = [(0.1, 0.2, 0.3), None, (np.inf, 0.0, 0.0), (-1.0, 0.5, 1e-9)]
    confidences = [None, None, None, np.linspace(0, 1, 24)]
    msgs = smpl_body_msgs(bodies, views, rotmats_on, vertices_on, image_size=(640, 480), velocities=velocities,
                          velocity_frame="odom", joint_confidences=confidences)
    assert len(msgs) == 4
    for body, view, velocity, conf, msg in zip(bodies, views, velocities, confidences, msgs):
        assert_same_body(msg, reference_smpl_body(body, view, velocity, "odom", (640, 480), rotmats_on,
                                                  vertices_on, conf))
    assert msgs[1].joint_confidence[4] == 0.0 and msgs[2].joint_confidence[7] == 0.0


def test_smpl_body_array_equals_the_checked_reference():
    from pare_ros.msg import SmplBodyArray
    from pare_ros.ros.body_messages import smpl_body_array_msg

    bodies = smpl_body_msgs([make_fake_body(1), make_fake_body(2)], [View(1), View(2)], image_size=(640, 480))
    msg = smpl_body_array_msg(header(), bodies, (640, 480), (500.0, 510.0, 320.0, 240.0), "neutral", "est",
                              0.125, 3)
    ref = SmplBodyArray(header=header(), image_width=640, image_height=480,
                        intrinsics=np.array([500.0, 510.0, 320.0, 240.0]), smpl_model="neutral", estimator="est",
                        latency=0.125, frames_skipped=3, bodies=bodies)
    assert deserialize_message(serialize_message(msg), SmplBodyArray) == ref
    msg.frames_skipped, msg.latency = 5, 0.25                       # what the node sets before publishing
    assert deserialize_message(serialize_message(msg), SmplBodyArray).frames_skipped == 5


@pytest.mark.parametrize("joint_frames,head_frame", [(True, True), (False, False), (True, False)])
def test_root_poses_read_from_the_tf_frames_equal_their_own(joint_frames, head_frame):
    from pare_ros.ros.body_messages import body_columns

    bodies = [make_fake_body(seed) for seed in range(3)]
    tf = tf_frames.bodies_transforms(bodies, ["a", "b", "c"], header(), joint_frames=joint_frames,
                                     head_frame=head_frame)
    roots = tf_frames.body_roots(tf, 3)
    np.testing.assert_array_equal(roots, body_columns(bodies).root)
    assert [t.child_frame_id for t in tf.to_msgs()[::len(tf) // 3]] == ["body_a", "body_b", "body_c"]
    assert tf_frames.body_roots(tf_frames.bodies_transforms([], [], header()), 0) is None
