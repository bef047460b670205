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
    assert serialize_message(fast) == serialize_message(checked)


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
