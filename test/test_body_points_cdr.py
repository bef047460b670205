"""~/body_points as a PointCloudBundle (CDR written with NumPy) against rclpy's serialisation of
the PointCloud2 object: the same bytes outside padding and the same message read back, for
several people, strides and none; the self-check and the fallback; bytes a subscriber receives."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs not installed")

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from pare_ros.ros import body_points  # noqa: E402
from pare_ros.ros.body_points import body_points_bundle, body_points_msg, points_from_msg  # noqa: E402


def _people(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(2 ** 32 - 1 - 5 * i if i % 2 else 7 * i, rng.normal(size=(6890, 3)).astype(np.float32)) for i in range(n)]


def _header(frame_id: str = "camera_color_optical_frame") -> Header:
    return Header(stamp=Time(sec=1_700_000_001, nanosec=123_456_789), frame_id=frame_id)


def _reference(header, people, stride) -> PointCloud2:
    """The cloud written out here from its definition (not through body_points.py)."""
    xyz = [np.asarray(v, np.float32)[::stride] for _, v in people]
    points = np.zeros(sum(map(len, xyz)), [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("track_id", "<u4")])
    if xyz:
        cat = np.concatenate(xyz)
        points["x"], points["y"], points["z"] = cat[:, 0], cat[:, 1], cat[:, 2]
        points["track_id"] = np.concatenate([np.full(len(v), tid, np.uint32) for (tid, _), v in zip(people, xyz)])
    fields = [PointField(name=n, offset=4 * k, datatype=PointField.FLOAT32 if k < 3 else PointField.UINT32, count=1)
              for k, n in enumerate(("x", "y", "z", "track_id"))]
    return PointCloud2(header=header, height=1, width=len(points), fields=fields, is_bigendian=False, point_step=16,
                       row_step=16 * len(points), data=points.tobytes(), is_dense=True)


def assert_same_cdr(bundle, reference_msg: PointCloud2) -> bytes:
    data = bundle.serialize()
    reference = serialize_message(reference_msg)
    assert len(data) == len(reference)
    padding = body_points.cloud_padding(bundle.header, bundle.points)
    keep = np.ones(len(data), bool)
    for start, end in padding:
        assert 0 < end - start < 4 and (end - 4) % 4 == 0 and data[start:end] == bytes(end - start)
        keep[start:end] = False
    mismatch = np.flatnonzero((np.frombuffer(data, np.uint8) != np.frombuffer(reference, np.uint8)) & keep)
    assert mismatch.size == 0, f"bytes differ at {mismatch[:10]}"
    assert deserialize_message(data, PointCloud2) == deserialize_message(reference, PointCloud2)
    return data


@pytest.mark.parametrize("n,stride", [(0, 1), (1, 1), (3, 1), (8, 1), (3, 2), (2, 7), (1, 10000)])
def test_bundle_equals_rclpy(n, stride):
    people, header = _people(n, seed=n), _header()
    bundle = body_points_bundle(header, people, stride)
    assert_same_cdr(bundle, _reference(header, people, stride))
    assert bundle.width == sum(len(v[::stride]) for _, v in people) and bundle.height == 1
    assert bundle.to_msg() == body_points_msg(header, people, stride)
    xyz, ids = points_from_msg(bundle)
    np.testing.assert_array_equal(xyz, np.concatenate([v[::stride] for _, v in people]) if people else np.zeros((0, 3)))
    assert len(ids) == bundle.width


@pytest.mark.parametrize("frame_id", ["", "a", "ab", "abc", "abcd", "κάμερα"])
def test_every_frame_id_length(frame_id):
    people, header = _people(2), _header(frame_id)
    assert_same_cdr(body_points_bundle(header, people, 3), _reference(header, people, 3))


def test_float64_vertices_cast_like_the_object_path():
    people = [(4, np.random.default_rng(1).normal(size=(50, 3)))]          # float64 in, float32 out
    assert_same_cdr(body_points_bundle(_header(), people), body_points_msg(_header(), people))


def test_bundle_owns_its_points():
    first_people = _people(2, seed=1)
    first = body_points_bundle(_header(), first_people)
    data = first.serialize()
    body_points_bundle(_header(), _people(3, seed=2))                      # same gather buffer, more points
    assert first.serialize() == data
    np.testing.assert_array_equal(points_from_msg(first)[0], np.concatenate([v for _, v in first_people]))


def test_invalid_stride():
    with pytest.raises(ValueError, match="stride"):
        body_points_bundle(_header(), _people(1), stride=0)


def test_fallback_and_self_check(monkeypatch):
    people, header = _people(2), _header()
    bundle = body_points_bundle(header, people)
    assert body_points.fast_path_agrees.__wrapped__()
    monkeypatch.setattr(body_points, "fast_path_agrees", lambda: False)
    assert deserialize_message(bundle.serialize(), PointCloud2) == _reference(header, people, 1)
    monkeypatch.undo()
    real = body_points._cloud_head

    def wrong_point_step(*args):
        head, padding = real(*args)                   # ends with point_step, row_step, data length
        return head[:-12] + (17).to_bytes(4, "little") + head[-8:], padding
    monkeypatch.setattr(body_points, "_cloud_head", wrong_point_step)
    assert not body_points.fast_path_agrees.__wrapped__()


def test_published_bytes_arrive_as_the_message():
    """Publisher.publish(bytes) through the real rmw: a subscriber gets the same PointCloud2."""
    from ros_harness import publish_bytes_and_receive

    people, header = _people(2), _header()
    got = publish_bytes_and_receive(PointCloud2, body_points_bundle(header, people, 2).serialize(),
                                    "pare_points_cdr_test")
    assert got is not None and got == _reference(header, people, 2)
