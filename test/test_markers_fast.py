"""MarkerBundle's deferred mesh gather (one reused buffer, NumPy buffers joined into the CDR)
gives the same MarkerArray as building every point explicitly from vertices[faces]."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("visualization_msgs.msg", reason="visualization_msgs not installed")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from pare_ros.ros import markers  # noqa: E402

RNG = np.random.default_rng(7)
FACES = RNG.integers(0, 6890, (13776, 3))
VERTEX_PARTS = RNG.integers(0, 24, 6890)


def _body(seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    return SimpleNamespace(vertices=rng.normal(size=(6890, 3)).astype(np.float32),
                           joints3d=rng.normal(size=(24, 3)).astype(np.float32),
                           part_visibility=rng.random(24).astype(np.float32))


def _round_trip(array: MarkerArray) -> MarkerArray:
    """Through rclpy's own serializer (colours become float32 as on the wire)."""
    return deserialize_message(serialize_message(array), MarkerArray)


def _check_against_explicit(decoded: MarkerArray, bodies, mode: str) -> None:
    """Mesh points/colours against the plain formulas (fancy indexing, per-part colour);
    everything else against the object path's markers through rclpy's serializer."""
    assert len(decoded.markers) == 3 * len(bodies)
    for i, body in enumerate(bodies):
        mesh = decoded.markers[3 * i]
        corners = np.asarray(body.vertices, np.float64)[FACES].reshape(-1, 3)
        np.testing.assert_array_equal(np.array([[p.x, p.y, p.z] for p in mesh.points]), corners)
        if mode == "visibility":
            v = np.clip(body.part_visibility, 0, 1)[VERTEX_PARTS][FACES].reshape(-1)
            expected = np.stack([1 - v, v, np.full_like(v, 0.15), np.ones_like(v)], -1).astype(np.float32)
            colors = np.array([[c.r, c.g, c.b, c.a] for c in mesh.colors], np.float32)
            np.testing.assert_array_equal(colors, expected)
        else:
            assert len(mesh.colors) == 0
        reference = markers.body_markers(body, i, Header(frame_id="cam"), FACES, color_mode=mode,
                                         vertex_parts=VERTEX_PARTS, body_id=f"b{i}", state=1)
        reference[0].points, reference[0].colors = [], []
        mesh.points, mesh.colors = [], []
        assert _round_trip(MarkerArray(markers=reference)).markers == decoded.markers[3 * i:3 * i + 3]


def _bundle(bodies, mode: str) -> markers.MarkerBundle:
    bundle = markers.MarkerBundle()
    for i, body in enumerate(bodies):
        bundle.extend(markers.body_marker_bundle(body, i, Header(frame_id="cam"), FACES, color_mode=mode,
                                                 vertex_parts=VERTEX_PARTS, body_id=f"b{i}", state=1))
    return bundle


@pytest.mark.parametrize("mode", ["track", "visibility"])
def test_cdr_meshes_equal_explicit_points(mode):
    # Sizes up, down and up again: the reused gather buffer must never leak a previous frame.
    for frame, people in enumerate((2, 1, 2)):
        bodies = [_body(10 * frame + i) for i in range(people)]
        bundle = _bundle(bodies, mode)
        data = bundle.serialize()
        assert bundle.last_path == "cdr"
        _check_against_explicit(deserialize_message(data, MarkerArray), bodies, mode)


def test_indexed_and_plain_bulk_markers_mix():
    from visualization_msgs.msg import Marker

    table = RNG.normal(size=(10, 3))
    index = np.array([3, 3, 0, 9, 1, 2])
    bundle = markers.MarkerBundle()
    bundle.append(Marker(id=1), points=table, index=index)
    bundle.append(Marker(id=2), points=table[:4], colors=RNG.random((4, 4)))
    bundle.append(Marker(id=3), points=table, colors=RNG.random((10, 4)), index=index[::-1])
    decoded = deserialize_message(bundle.serialize(), MarkerArray)
    assert bundle.last_path == "cdr"
    assert [len(m.points) for m in decoded.markers] == [6, 4, 6]
    assert [len(m.colors) for m in decoded.markers] == [0, 4, 6]
    np.testing.assert_array_equal([[p.x, p.y, p.z] for p in decoded.markers[2].points], table[index[::-1]])
    assert decoded == _round_trip(bundle.to_msg())
