"""SmplBodyArrayBundle's NumPy CDR writer against rclpy's serialiser of the same message objects
(in-process, real message classes, no DDS)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")

from pare_ros.msg import SmplBodyArray  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from test_ros_fast_messages import View  # noqa: E402
from test_ros_tf_markers import make_fake_body  # noqa: E402
from pare_ros.ros import body_array  # noqa: E402
from pare_ros.ros.body_array import SmplBodyArrayBundle  # noqa: E402
from pare_ros.ros.body_messages import body_columns, smpl_body_array_msg, smpl_body_msgs  # noqa: E402


def header(frame="cam_optical_x"):
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = 1_700_000_123, 987_654_321
    return h


def case(people, optional, frame="cam_optical_x", velocity_frame="odom"):
    bodies = [make_fake_body(seed) for seed in range(people)]
    views = [View(i) for i in range(people)]
    if people > 1:
        views[1] = None                                     # untracked: body_id ""
    for i, view in enumerate(views):
        if view is not None:
            view.body_id = "b" * (i + 1)                    # every length mod 4
    velocities = [None if i % 3 == 2 else (0.1 * i, np.inf if i == 3 else -0.2, 0.3) for i in range(people)]
    kwargs = dict(publish_rotmats=optional, publish_vertices=optional, image_size=(640, 480),
                  velocities=velocities, velocity_frame=velocity_frame)
    bundle = SmplBodyArrayBundle(header(frame), body_columns(bodies, views, **kwargs), (640, 480),
                                 (500.0, 510.5, 320.25, 240.0), "neutral", "pare-hrnet_w32/pytorch-cpu-fp32")
    bundle.latency, bundle.frames_skipped = 0.0123, 7                # as the node sets them
    reference = smpl_body_array_msg(header(frame), smpl_body_msgs(bodies, views, **kwargs), (640, 480),
                                    (500.0, 510.5, 320.25, 240.0), "neutral", "pare-hrnet_w32/pytorch-cpu-fp32",
                                    0.0123, 7)
    return bundle, reference


@pytest.mark.parametrize("people", [0, 1, 4])
@pytest.mark.parametrize("optional", [False, True])
@pytest.mark.parametrize("frame,velocity_frame", [("cam_optical_x", "odom"), ("c", "map_frame")])
def test_bytes_equal_rclpy_serialising_the_objects(people, optional, frame, velocity_frame):
    bundle, reference = case(people, optional, frame, velocity_frame)
    assert bundle.to_msg() == reference
    data, expected = bundle.serialize(), serialize_message(reference)
    assert len(data) == len(expected)
    # Fast CDR leaves padding uninitialised; ours is zero. Everything else is byte-equal.
    differ = [i for i, (a, b) in enumerate(zip(data, expected)) if a != b]
    assert all(data[i] == 0 for i in differ) and len(differ) <= 8 * (3 + 4 * people)
    assert deserialize_message(data, SmplBodyArray) == reference


def test_values_reach_the_wire():
    bundle, _ = case(3, False)
    back = deserialize_message(bundle.serialize(), SmplBodyArray)
    assert (back.header.stamp.sec, back.header.stamp.nanosec, back.header.frame_id) == \
        (1_700_000_123, 987_654_321, "cam_optical_x")
    assert back.frames_skipped == 7 and back.latency == pytest.approx(0.0123)
    assert [b.body_id for b in back.bodies] == ["b", "", "bbb"]
    assert [b.velocity_valid for b in back.bodies] == [True, True, False]
    np.testing.assert_array_equal(back.bodies[2].joints_3d, bundle.columns.arrays["joints_3d"][2])
    assert back.bodies[0].root.orientation.w == bundle.columns.root[0, 6]


def test_layout_cache_keeps_each_frames_values():
    first, _ = case(2, False)
    second, reference = case(2, False)
    second.columns.arrays["betas"][:] += 1.0
    second.frames_skipped = 1
    first_bytes = first.serialize()
    back = deserialize_message(second.serialize(), SmplBodyArray)
    assert back.frames_skipped == 1
    np.testing.assert_array_equal(back.bodies[1].betas, np.asarray(reference.bodies[1].betas) + 1.0)
    assert deserialize_message(first_bytes, SmplBodyArray).frames_skipped == 7


def test_falls_back_to_rclpy_when_the_writer_disagrees(monkeypatch):
    bundle, reference = case(2, True)
    assert body_array.fast_path_agrees()
    monkeypatch.setattr(body_array, "fast_path_agrees", lambda: False)
    assert deserialize_message(bundle.serialize(), SmplBodyArray) == reference
