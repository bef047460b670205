"""TransformBundle's NumPy CDR writer against rclpy's serialiser and an independent struct-based
writer (in-process, real message classes, no DDS)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from test_ros_tf_markers import make_fake_body  # noqa: E402
from pare_ros.ros import tf_frames, tf_message  # noqa: E402
from pare_ros.ros.tf_message import TransformBundle  # noqa: E402


def reference_cdr(msg) -> tuple:
    """(bytes, padding byte positions) of a TFMessage, written field by field with struct
    (classic little-endian CDR, alignment relative to the end of the 4-byte header)."""
    out, padding = bytearray(), []

    def align(n):
        while len(out) % n:
            padding.append(len(out) + 4)
            out.append(0)

    def string(text):
        align(4)
        data = text.encode()
        out.extend(struct.pack("<I", len(data) + 1) + data + b"\0")

    out.extend(struct.pack("<I", len(msg.transforms)))
    for t in msg.transforms:
        align(4)
        out.extend(struct.pack("<iI", t.header.stamp.sec, t.header.stamp.nanosec))
        string(t.header.frame_id)
        string(t.child_frame_id)
        align(8)
        tr, q = t.transform.translation, t.transform.rotation
        out.extend(struct.pack("<7d", tr.x, tr.y, tr.z, q.x, q.y, q.z, q.w))
    return b"\x00\x01\x00\x00" + bytes(out), padding


def checked_msg(bundle) -> TFMessage:
    """The same TFMessage through the checked constructors."""
    return TFMessage(transforms=[
        TransformStamped(header=Header(stamp=Time(sec=bundle.sec, nanosec=bundle.nanosec), frame_id=parent),
                         child_frame_id=child,
                         transform=Transform(translation=Vector3(x=t[0], y=t[1], z=t[2]),
                                             rotation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])))
        for parent, child, t, q in zip(bundle.parents, bundle.children, bundle.translations.tolist(),
                                       bundle.quaternions.tolist())])


def assert_known_answer(bundle):
    expected = checked_msg(bundle)
    assert bundle.to_msg() == expected
    data = bundle.serialize()
    reference, padding = reference_cdr(expected)
    assert data == reference                                    # our padding is zero
    assert deserialize_message(data, TFMessage) == expected
    rclpy_bytes = serialize_message(expected)
    assert len(rclpy_bytes) == len(data)
    differ = [i for i, (a, b) in enumerate(zip(data, rclpy_bytes)) if a != b]
    assert set(differ) <= set(padding)          # Fast CDR leaves its padding uninitialised


def header(frame="/cam_optical", sec=12, nanosec=345):
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


@pytest.mark.parametrize("people", [0, 1, 3])
@pytest.mark.parametrize("joint_frames,head_frame", [(True, True), (False, True), (True, False), (False, False)])
def test_bodies_transforms_serialise_like_rclpy(people, joint_frames, head_frame):
    bodies = [make_fake_body(seed) for seed in range(people)]
    ids = ["a", "bc", "def", "ghij"][:people]          # every name length mod 4
    bundle = tf_frames.bodies_transforms(bodies, ids, header("/cam", 1_700_000_000, 999_999_999),
                                         prefix="p_", joint_frames=joint_frames, head_frame=head_frame)
    assert len(bundle) == people * (1 + head_frame + 24 * joint_frames)
    assert_known_answer(bundle)
    one_by_one = [t for b, i in zip(bodies, ids)
                  for t in tf_frames.body_transforms(b, i, header("/cam", 1_700_000_000, 999_999_999), prefix="p_",
                                                     joint_frames=joint_frames, head_frame=head_frame)]
    assert deserialize_message(bundle.serialize(), TFMessage).transforms == one_by_one


def test_odd_names_negative_stamp_and_extreme_values():
    names = ["", "x", "yz", "abc", "abcd", "é/ü", "n" * 37]
    m = len(names)
    rng = np.random.default_rng(0)
    t = rng.normal(size=(m, 3)) * 1e3
    t[0] = (np.inf, -0.0, 1e-310)                   # the writer copies bits, whatever they are
    bundle = TransformBundle(-5, 7, names, names[::-1], t, rng.normal(size=(m, 4)))
    assert_known_answer(bundle)
    # The layout cache is keyed by the names only: the next frame's values are its own.
    again = TransformBundle(3, 4, names, names[::-1], t + 1.0, bundle.quaternions * 0.5)
    assert_known_answer(again)


def test_empty_bundle_is_an_empty_tf_message():
    bundle = TransformBundle()
    assert not bundle and len(bundle) == 0 and list(bundle) == []
    assert bundle.serialize() == serialize_message(TFMessage())


def test_sequence_of_transform_stamped():
    bundle = tf_frames.bodies_transforms([make_fake_body(1)], ["q"], header())
    msgs = bundle.to_msgs()
    assert bundle[0] is msgs[0] and list(bundle) == msgs and bundle[-1].child_frame_id == msgs[-1].child_frame_id
    assert msgs[0].header.frame_id == "cam_optical" and msgs[0].child_frame_id == "body_q"


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="parents"):
        TransformBundle(0, 0, ["a"], ["b", "c"], np.zeros((1, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="quaternions"):
        TransformBundle(0, 0, ["a"], ["b"], np.zeros((1, 3)), np.zeros((1, 3)))


def test_falls_back_to_rclpy_when_the_writer_disagrees(monkeypatch):
    bundle = tf_frames.bodies_transforms([make_fake_body(2)], ["w"], header())
    assert tf_message.fast_path_agrees()
    monkeypatch.setattr(tf_message, "fast_path_agrees", lambda: False)
    assert deserialize_message(bundle.serialize(), TFMessage) == bundle.to_msg()
