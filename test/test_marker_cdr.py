"""MarkerBundle's own CDR writer (marker_cdr.py) against rclpy's serialiser: the same bytes
outside alignment padding, the same length, and the same message when read back — for every
marker kind the package makes, markers appended as objects with every field set, empty arrays,
non-ASCII text; the one-time self-check and the fallback to rclpy."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("visualization_msgs.msg", reason="visualization_msgs not installed")

from builtin_interfaces.msg import Duration, Time  # noqa: E402
from geometry_msgs.msg import Point  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402
from std_msgs.msg import ColorRGBA, Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray, MeshFile, UVCoordinate  # noqa: E402

from pare_ros.ros import marker_cdr, markers  # noqa: E402

RNG = np.random.default_rng(11)
FACES = RNG.integers(0, 6890, (700, 3))     # 2100 corners: 50 kB, joined by reference like a full mesh
VERTEX_PARTS = RNG.integers(0, 24, 6890)


def _body(seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    return SimpleNamespace(vertices=rng.normal(size=(6890, 3)).astype(np.float32),
                           joints3d=rng.normal(size=(24, 3)), part_visibility=rng.random(24))


def _header(frame_id: str = "camera_color_optical_frame", sec: int = 1_700_000_123) -> Header:
    return Header(stamp=Time(sec=sec, nanosec=987_654_321), frame_id=frame_id)


def assert_same_cdr(bundle: markers.MarkerBundle, reference_msg: MarkerArray) -> bytes:
    """``bundle.serialize()`` is rclpy's serialisation of ``reference_msg`` outside padding."""
    data = bundle.serialize()
    assert bundle.last_path == "cdr"
    padding: list = []
    assert marker_cdr.marker_array_cdr(bundle._gathered(), padding) == data   # same writer, padding listed
    reference = serialize_message(reference_msg)
    assert len(data) == len(reference)
    for start, end in padding:           # padding runs: short, ending 4- or 8-aligned, zero in ours
        assert 0 < end - start < 8 and (end - 4) % 4 == 0 and data[start:end] == bytes(end - start)
    keep = np.ones(len(data), bool)
    for start, end in padding:
        keep[start:end] = False
    ours, theirs = np.frombuffer(data, np.uint8), np.frombuffer(reference, np.uint8)
    mismatch = np.flatnonzero((ours != theirs) & keep)
    assert mismatch.size == 0, f"bytes differ at {mismatch[:10]}"
    assert deserialize_message(data, MarkerArray) == deserialize_message(reference, MarkerArray)
    return data


def _people_bundle(n: int, mode: str = "track", mesh: bool = True, **kwargs) -> markers.MarkerBundle:
    bundle = markers.MarkerBundle()
    for i in range(n):
        bundle.extend(markers.body_marker_bundle(_body(i), 3 * i + 1, kwargs.get("header", _header()), FACES,
                                                 include_mesh=mesh, color_mode=mode, vertex_parts=VERTEX_PARTS,
                                                 body_id=kwargs.get("body_id", f"b{i}"), state=i % 3,
                                                 lifetime=2.5, ns_prefix=kwargs.get("ns_prefix", "")))
    return bundle


@pytest.mark.parametrize("mode", ["track", "visibility"])
@pytest.mark.parametrize("mesh", [True, False])
def test_people_markers_equal_rclpy(mode, mesh):
    bundle = _people_bundle(3, mode, mesh)
    data = assert_same_cdr(bundle, bundle.to_msg())
    decoded = deserialize_message(data, MarkerArray)
    assert [m.type for m in decoded.markers] == ([11, 5, 9] if mesh else [5, 9]) * 3
    if mesh:
        corners = np.asarray(_body(1).vertices, np.float64)[FACES].reshape(-1, 3)
        np.testing.assert_array_equal([[p.x, p.y, p.z] for p in decoded.markers[3].points], corners)
        assert len(decoded.markers[3].colors) == (len(corners) if mode == "visibility" else 0)


def test_reference_objects_built_here():
    """Against Marker objects written out field by field in this test (not through to_msg)."""
    body, h = _body(5), _header()
    bundle = markers.body_marker_bundle(body, 7, h, FACES, include_mesh=False, body_id="kq", state=1,
                                        lifetime=1.25)
    joints = np.asarray(body.joints3d, np.float64)
    bones = [(j, p) for j, p in enumerate(markers.SMPL_PARENTS) if p >= 0]
    skeleton = Marker(header=h, ns="skeleton", id=7, type=Marker.LINE_LIST, action=Marker.ADD,
                      lifetime=Duration(sec=1, nanosec=250_000_000))
    skeleton.pose.orientation.w = 1.0
    skeleton.scale.x = 0.02
    r, g, b = markers.track_color(7)
    skeleton.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
    skeleton.points = [Point(x=float(x), y=float(y), z=float(z)) for pair in bones for x, y, z in joints[list(pair)]]
    label = Marker(header=h, ns="label", id=7, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                   lifetime=Duration(sec=1, nanosec=250_000_000), text="kq (confirmed)")
    label.pose.position.x, label.pose.position.y, label.pose.position.z = (
        float(joints[15, 0]), float(joints[15, 1]) - 0.3, float(joints[15, 2]))
    label.pose.orientation.w = 1.0
    label.scale.z = 0.12
    label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    assert_same_cdr(bundle, MarkerArray(markers=[skeleton, label]))


def test_every_field_of_appended_objects():
    """Objects with every Marker field set (texture, uv, mesh_file…) go through the records."""
    h = _header("ab")
    full = Marker(header=h, ns="ñs", id=-5, type=Marker.MESH_RESOURCE, action=Marker.ADD, frame_locked=True,
                  lifetime=Duration(sec=-1, nanosec=5), texture_resource="embedded://tex",
                  text="weiß", mesh_resource="package://pkg/mesh.dae", mesh_use_embedded_materials=True)
    full.pose.position.x, full.pose.orientation.z, full.pose.orientation.w = 1.5, 0.6, 0.8
    full.scale.x, full.scale.y, full.scale.z = 0.1, 0.2, 0.3
    full.color = ColorRGBA(r=0.1, g=0.2, b=0.3, a=0.4)          # not float32-exact: rounded as rclpy does
    full.points = [Point(x=1.0, y=2.0, z=3.0), Point(x=-1.0, y=1e-300, z=7.25)]
    full.colors = [ColorRGBA(r=0.3, g=0.2, b=0.1, a=1.0)] * 2
    full.texture = CompressedImage(header=_header("tex", -3), format="png", data=bytes(range(9)))
    full.uv_coordinates = [UVCoordinate(u=0.25, v=0.5), UVCoordinate(u=1.0 / 3.0, v=0.0)]
    full.mesh_file = MeshFile(filename="mesh.dae", data=b"\x00\x01\x02")
    plain = Marker(header=_header("x"), ns="p", id=2)               # every default
    bundle = markers.MarkerBundle()
    bundle.extend([full, plain])
    bundle.append(Marker(header=h, ns="bulk", id=3, type=Marker.POINTS), points=RNG.normal(size=(5, 3)),
                  colors=RNG.random((5, 4)))
    reference = bundle.to_msg().markers[2]
    assert_same_cdr(bundle, MarkerArray(markers=[full, plain, reference]))
    decoded = deserialize_message(bundle.serialize(), MarkerArray).markers[0]
    assert decoded.mesh_file.data.tobytes() == b"\x00\x01\x02" and decoded.texture.format == "png"
    assert decoded.uv_coordinates[1].u == np.float32(1.0 / 3.0) and decoded.text == "weiß"


def test_deletes_delete_all_and_empty():
    h = _header()
    bundle = markers.MarkerBundle()
    assert_same_cdr(bundle, MarkerArray())                              # no markers at all
    bundle.extend(markers.delete_all(h))
    bundle.extend(markers.delete_all(h, ns_prefix="pare/"))
    bundle.extend(markers.delete_markers(2 ** 32 - 1, h, ns_prefix="pare/"))
    expected = markers.delete_all(h) + markers.delete_all(h, "pare/") + markers.delete_markers(2 ** 32 - 1, h, "pare/")
    assert_same_cdr(bundle, MarkerArray(markers=expected))
    # Then people after the deletes (the frame processor's order), with no points at all in one.
    bundle.extend(_people_bundle(2))
    bundle.append(Marker(header=h, ns="empty", id=1, type=Marker.LINE_LIST), points=np.zeros((0, 3)),
                  index=np.zeros(0, int))
    assert_same_cdr(bundle, bundle.to_msg())


@pytest.mark.parametrize("frame_id", ["", "c", "ca", "cam", "cam_", "カメラ"])
def test_unicode_and_every_string_length(frame_id):
    # Every frame_id length mod 4 (and a multi-byte one) moves pose between its two alignments.
    bundle = _people_bundle(2, "visibility", header=_header(frame_id), ns_prefix="πρ/" + frame_id,
                            body_id="人" + frame_id)
    assert_same_cdr(bundle, bundle.to_msg())
    assert deserialize_message(bundle.serialize(), MarkerArray).markers[2].text.startswith("人")


def test_both_pose_alignments_are_exercised():
    pads = set()
    for frame_id in ("", "abcd"):
        skeleton = _people_bundle(1, mesh=False, header=_header(frame_id)).markers[0]
        padding: list = []
        marker_cdr.marker_array_cdr([(skeleton, *skeleton.resolved())], padding)
        pads.add(any(end - start == 4 for start, end in padding))          # only pose pads by 4
    assert pads == {True, False}


def test_string_with_nul_matches_rclpy():
    bundle = markers.MarkerBundle()
    bundle.append(Marker(header=_header(), ns="a\x00b", id=1, text="x\x00yz"))
    assert_same_cdr(bundle, bundle.to_msg())


def test_many_people_and_reused_gather_buffer():
    first = _people_bundle(8, "visibility")
    data = first.serialize()
    _people_bundle(1).serialize()                     # a smaller frame in the same gather buffers
    assert first.serialize() == data                  # ours is deterministic (zero padding)
    assert_same_cdr(first, first.to_msg())


def test_fallback_when_self_check_fails(monkeypatch):
    bundle = _people_bundle(2, "visibility")
    monkeypatch.setattr(marker_cdr, "fast_path_agrees", lambda: False)
    data = bundle.serialize()
    assert bundle.last_path == "objects"
    assert deserialize_message(data, MarkerArray) == deserialize_message(serialize_message(bundle.to_msg()),
                                                                         MarkerArray)


def test_self_check_detects_a_broken_writer(monkeypatch):
    assert marker_cdr.fast_path_agrees.__wrapped__()
    real = marker_cdr._plain_tail

    def wrong_text(texture_resource, text, mesh_resource, embedded):
        return real(texture_resource, text.upper(), mesh_resource, embedded)
    monkeypatch.setattr(marker_cdr, "_plain_tail", wrong_text)
    assert not marker_cdr.fast_path_agrees.__wrapped__()
    monkeypatch.setattr(marker_cdr, "_plain_tail", real)
    monkeypatch.setattr(marker_cdr, "MARKER_FIELDS", marker_cdr.MARKER_FIELDS[:-1])   # another Marker.msg
    assert not marker_cdr.fast_path_agrees.__wrapped__()


def test_records_are_not_changed_by_serialize_or_to_msg():
    bundle = _people_bundle(1)
    before = [(r.points, r.colors, r.index) for r in bundle.markers]
    bundle.serialize()
    bundle.to_msg()
    assert all(a is r.points and b is r.colors and c is r.index
               for (a, b, c), r in zip(before, bundle.markers))


def test_published_bytes_arrive_as_the_message():
    """Publisher.publish(bytes) through the real rmw: a subscriber gets the same MarkerArray."""
    from ros_harness import publish_bytes_and_receive

    bundle = _people_bundle(2, "visibility")
    got = publish_bytes_and_receive(MarkerArray, bundle.serialize(), "pare_marker_cdr_test")
    assert got is not None and got == deserialize_message(serialize_message(bundle.to_msg()), MarkerArray)


def test_visibility_colors_formula_with_non_finite_values():
    vis = np.array([np.nan, np.inf, -np.inf, 1.5, -0.5, 0.3, 1.0, 0.0] * 3)
    expected_v = np.clip(np.nan_to_num(vis), 0, 1).astype(np.float32)          # NaN → 0, +inf → 1, −inf → 0
    per_part = np.stack([1 - expected_v, expected_v, np.full(24, 0.15), np.full(24, 0.5)], -1).astype(np.float32)
    np.testing.assert_array_equal(markers.visibility_colors(vis, VERTEX_PARTS, 0.5), per_part[VERTEX_PARTS])
