"""``visualization_msgs/Marker`` as a plain record, and a MarkerArray written straight to CDR.

rclpy needs one Python object per ``Marker`` (~20 µs to construct, plus checked setters for each
nested field) and one per point, and its serialiser converts them all to C again (~1.5 ms for
eight people's skeletons and labels). :class:`MarkerRecord` keeps a marker's values as Python
scalars and NumPy arrays; :func:`marker_array_cdr` writes the CDR bytes of the MarkerArray for
``Publisher.publish(bytes)``; :meth:`MarkerRecord.to_msg` builds the object only when asked.

CDR (classic, little endian; alignment counted after the 4-byte encapsulation header), per
``visualization_msgs/msg/Marker.msg`` (the same definition on Jazzy and Kilted)::

    uint32 M, then M × Marker:
      (align 4) int32 sec, uint32 nanosec, string frame_id, string ns, int32 id, type, action,
      (align 8) float64 pose[7] (position xyz, orientation xyzw), scale[3],
      float32 color[4], int32 lifetime.sec, uint32 lifetime.nanosec, bool frame_locked,
      (align 4) uint32 n + n × (align 8) float64 point[3],  uint32 n + n × float32 rgba[4],
      string texture_resource,
      texture (sensor_msgs/CompressedImage): int32 sec, uint32 nanosec, string frame_id,
          string format, uint32 n + uint8 data[n],
      uint32 n + n × float32 uv[2], string text, string mesh_resource,
      mesh_file (MeshFile): string filename, uint32 n + uint8 data[n],
      bool mesh_use_embedded_materials
    string = (align 4) uint32 length with the NUL, UTF-8 bytes, NUL

Padding bytes are zero (Fast CDR leaves them uninitialised; the bytes equal rclpy's everywhere
else). Before first use :func:`fast_path_agrees` compares the writer with rclpy's serialiser on
every marker kind; if they differ (another rmw or Marker definition), callers use the objects.
"""
from __future__ import annotations

import functools
import struct
from typing import Iterable, List, Optional, Tuple

import numpy as np

from .cdr import CdrRun, outside_padding
from .message_builders import bulk_builder

_ENCAPSULATION = b"\x00\x01\x00\x00"        # CDR_LE, no options
#: The Marker definition the writer implements (field names and types, in order).
MARKER_FIELDS = (
    ("header", "std_msgs/Header"), ("ns", "string"), ("id", "int32"), ("type", "int32"),
    ("action", "int32"), ("pose", "geometry_msgs/Pose"), ("scale", "geometry_msgs/Vector3"),
    ("color", "std_msgs/ColorRGBA"), ("lifetime", "builtin_interfaces/Duration"),
    ("frame_locked", "boolean"), ("points", "sequence<geometry_msgs/Point>"),
    ("colors", "sequence<std_msgs/ColorRGBA>"), ("texture_resource", "string"),
    ("texture", "sensor_msgs/CompressedImage"), ("uv_coordinates", "sequence<visualization_msgs/UVCoordinate>"),
    ("text", "string"), ("mesh_resource", "string"), ("mesh_file", "visualization_msgs/MeshFile"),
    ("mesh_use_embedded_materials", "boolean"))
IDENTITY_POSE = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)

_U32 = struct.Struct("<I")
_STAMP = struct.Struct("<iI")
# id, type, action, (4 padding bytes when pose would start at 4 mod 8), pose[7], scale[3],
# color[4], lifetime sec/nanosec, frame_locked: one pack per marker.
_MIDDLE = {0: struct.Struct("<3i10d4fiI?"), 4: struct.Struct("<3i4x10d4fiI?")}
_BIG = 4096                   # arrays above this many bytes are joined by reference, not copied twice


class MarkerRecord:
    """One Marker's values. ``header`` is a std_msgs/Header (kept by reference, read when
    serialised); ``pose`` 7 floats (x, y, z, qx, qy, qz, qw); ``scale`` 3; ``color`` 4 (RGBA);
    ``lifetime`` (sec, nanosec). ``points`` [N,3] float64 and ``colors`` [N,4] (float32, or
    float64 from an object) or None; with ``index`` [K] the marker's points are ``points[index]``
    (and its colours ``colors[index]``). ``texture`` (CompressedImage), ``uv_coordinates`` [N,2]
    and ``mesh_file`` (MeshFile) are None when empty, which is all this package makes."""

    __slots__ = ("header", "ns", "id", "type", "action", "pose", "scale", "color", "lifetime",
                 "frame_locked", "points", "colors", "index", "texture_resource", "texture",
                 "uv_coordinates", "text", "mesh_resource", "mesh_file", "mesh_use_embedded_materials")

    def __init__(self, header, ns: str = "", id: int = 0, type: int = 0, action: int = 0,  # noqa: A002
                 pose: Tuple[float, ...] = IDENTITY_POSE, scale=(0.0, 0.0, 0.0), color=(0.0, 0.0, 0.0, 0.0),
                 lifetime=(0, 0), frame_locked: bool = False, points: Optional[np.ndarray] = None,
                 colors: Optional[np.ndarray] = None, index: Optional[np.ndarray] = None,
                 texture_resource: str = "", texture=None, uv_coordinates: Optional[np.ndarray] = None,
                 text: str = "", mesh_resource: str = "", mesh_file=None,
                 mesh_use_embedded_materials: bool = False) -> None:
        self.header, self.ns, self.id, self.type, self.action = header, ns, id, type, action
        self.pose, self.scale, self.color, self.lifetime = pose, scale, color, lifetime
        self.frame_locked, self.points, self.colors, self.index = frame_locked, points, colors, index
        self.texture_resource, self.texture, self.uv_coordinates = texture_resource, texture, uv_coordinates
        self.text, self.mesh_resource, self.mesh_file = text, mesh_resource, mesh_file
        self.mesh_use_embedded_materials = mesh_use_embedded_materials

    def copy(self, **changes) -> "MarkerRecord":
        """A shallow copy with ``changes`` applied (arrays shared)."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return MarkerRecord(**values)

    @classmethod
    def from_msg(cls, msg) -> "MarkerRecord":
        """The record of a visualization_msgs/Marker object (every field; values copied)."""
        position, q, s, c = msg.pose.position, msg.pose.orientation, msg.scale, msg.color
        points = np.array([(p.x, p.y, p.z) for p in msg.points], np.float64).reshape(-1, 3) if msg.points else None
        colors = np.array([(k.r, k.g, k.b, k.a) for k in msg.colors], np.float64).reshape(-1, 4) if msg.colors else None
        uv = (np.array([(k.u, k.v) for k in msg.uv_coordinates], np.float64).reshape(-1, 2)
              if msg.uv_coordinates else None)
        texture = msg.texture
        if not (texture.format or len(texture.data) or texture.header.frame_id or texture.header.stamp.sec
                or texture.header.stamp.nanosec):
            texture = None
        mesh_file = msg.mesh_file if (msg.mesh_file.filename or len(msg.mesh_file.data)) else None
        return cls(msg.header, msg.ns, msg.id, msg.type, msg.action,
                   (position.x, position.y, position.z, q.x, q.y, q.z, q.w), (s.x, s.y, s.z),
                   (c.r, c.g, c.b, c.a), (msg.lifetime.sec, msg.lifetime.nanosec), msg.frame_locked,
                   points, colors, None, msg.texture_resource, texture, uv, msg.text, msg.mesh_resource,
                   mesh_file, msg.mesh_use_embedded_materials)

    def to_msg(self, points: Optional[np.ndarray] = None, colors: Optional[np.ndarray] = None):
        """The visualization_msgs/Marker object; ``points``/``colors`` (the gathered arrays)
        default to the record's own (``points[index]`` if indexed)."""
        from builtin_interfaces.msg import Duration
        from visualization_msgs.msg import Marker, UVCoordinate

        if points is None and colors is None:
            points, colors = self.resolved()
        m = Marker()
        m.header = self.header
        m.ns, m.id, m.type, m.action = self.ns, self.id, self.type, self.action
        position, q = m.pose.position, m.pose.orientation
        position.x, position.y, position.z, q.x, q.y, q.z, q.w = (float(v) for v in self.pose)
        m.scale.x, m.scale.y, m.scale.z = (float(v) for v in self.scale)
        m.color.r, m.color.g, m.color.b, m.color.a = (float(v) for v in self.color)
        m.lifetime = Duration(sec=int(self.lifetime[0]), nanosec=int(self.lifetime[1]))
        m.frame_locked = bool(self.frame_locked)
        m.points = [] if points is None else points_from_array(points)
        m.colors = [] if colors is None else colors_from_array(colors)
        m.texture_resource = self.texture_resource
        if self.texture is not None:
            m.texture = self.texture
        if self.uv_coordinates is not None:
            m.uv_coordinates = [UVCoordinate(u=u, v=v) for u, v in
                                np.asarray(self.uv_coordinates, np.float32).astype(np.float64).tolist()]
        m.text, m.mesh_resource = self.text, self.mesh_resource
        if self.mesh_file is not None:
            m.mesh_file = self.mesh_file
        m.mesh_use_embedded_materials = bool(self.mesh_use_embedded_materials)
        return m

    def resolved(self) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """(points [K,3], colors [K,4] | None): the rows ``index`` selects, or the arrays."""
        if self.index is None or self.points is None:
            return self.points, self.colors
        colors = None if self.colors is None else np.take(self.colors, self.index, axis=0)
        return np.take(self.points, self.index, axis=0), colors


# ------------------------------------------------------------------------------------------
# Objects, for to_msg
# ------------------------------------------------------------------------------------------
def points_from_array(points: np.ndarray) -> list:
    """(N,3) array → list of geometry_msgs/Point (float64 values, exact), built without the
    setters' checks (:func:`.message_builders.bulk_builder`: ~3 µs per Point otherwise)."""
    from geometry_msgs.msg import Point

    make = bulk_builder(Point, ("x", "y", "z"))
    cols = np.asarray(points, dtype=np.float64).reshape(-1, 3).T.tolist()
    return list(map(make, *cols))


def colors_from_array(colors: np.ndarray) -> list:
    """(N,4) RGBA array → list of std_msgs/ColorRGBA (values rounded to float32, as on the wire)."""
    from std_msgs.msg import ColorRGBA

    make = bulk_builder(ColorRGBA, ("r", "g", "b", "a"))
    cols = np.asarray(colors, dtype=np.float32).reshape(-1, 4).astype(np.float64).T.tolist()
    return list(map(make, *cols))


@functools.lru_cache(maxsize=1024)
def _names(frame_id: str, ns: str) -> Tuple[bytes, tuple]:
    """header.frame_id and ns (after the stamp), padded to 4 for ``id``."""
    w = CdrRun()
    w.string(frame_id)
    w.string(ns)
    w.align(4)
    return w.chunk()


@functools.lru_cache(maxsize=4096)
def _plain_tail(texture_resource: str, text: str, mesh_resource: str, embedded: bool) -> Tuple[bytes, tuple]:
    """Everything after ``colors`` of a marker without texture, uv_coordinates or mesh_file."""
    return _tail(texture_resource, None, None, text, mesh_resource, None, embedded)


def _tail(texture_resource: str, texture, uv: Optional[np.ndarray], text: str, mesh_resource: str,
          mesh_file, embedded: bool) -> Tuple[bytes, tuple]:
    """Everything after ``colors`` (which ends 4-aligned): texture_resource … mesh_use_embedded_materials."""
    w = CdrRun()
    w.string(texture_resource)
    w.align(4)
    if texture is None:
        w.data += bytes(8)
        w.string("")
        w.string("")
        w.u32(0)
    else:
        w.data += _STAMP.pack(texture.header.stamp.sec, texture.header.stamp.nanosec)
        w.string(texture.header.frame_id)
        w.string(texture.format)
        w.octets(texture.data)
    w.u32(0 if uv is None else len(uv))
    if uv is not None:
        w.data += np.ascontiguousarray(uv, dtype="<f4").reshape(-1, 2).tobytes()
    w.string(text)
    w.string(mesh_resource)
    w.string("" if mesh_file is None else mesh_file.filename)
    w.octets(b"" if mesh_file is None else mesh_file.data)
    w.data.append(1 if embedded else 0)
    return w.chunk()


_ZEROS = tuple(bytes(n) for n in range(8))


def marker_array_cdr(items: Iterable[Tuple[MarkerRecord, Optional[np.ndarray], Optional[np.ndarray]]],
                     padding: Optional[list] = None) -> bytes:
    """CDR bytes of a MarkerArray of ``items`` = [(record, points [K,3] | None, colors [K,4] |
    None)]: the records' scalar fields with these points/colours (gathered by the caller).
    ``padding``, when a list, receives the (start, end) byte ranges that are padding.

    Per marker the variable-length runs between the 8-aligned parts (frame_id and ns; the
    strings after ``colors``) come from caches keyed by their strings: 8 people's skeletons and
    labels are a few dozen appends, not hundreds of small writes. Arrays above 4 kB are handed
    to the final ``bytes.join`` by reference (one copy)."""
    items = list(items)
    head = len(_ENCAPSULATION)
    pieces: list = [_ENCAPSULATION]
    buf = bytearray(_U32.pack(len(items)))
    base = 0                                  # bytes in ``pieces`` after the encapsulation

    def pads(chunk_padding, start: int) -> None:
        padding.extend((head + start + a, head + start + b) for a, b in chunk_padding)

    for m, points, colors in items:
        at = base + len(buf)
        pad = -at % 4                         # a marker starts at int32 header.stamp.sec
        if pad:
            if padding is not None:
                pads(((0, pad),), at)
            buf += _ZEROS[pad]
        stamp = m.header.stamp
        buf += _STAMP.pack(stamp.sec, stamp.nanosec)
        names, names_padding = _names(m.header.frame_id, m.ns)
        if padding is not None:
            pads(names_padding, base + len(buf))
        buf += names
        at = base + len(buf)
        pad = (at + 12) % 8                   # pose is 8-aligned: 4 bytes after id/type/action, or none
        if pad and padding is not None:
            pads(((12, 16),), at)
        buf += _MIDDLE[pad].pack(m.id, m.type, m.action, *m.pose, *m.scale, *m.color,
                                 *m.lifetime, bool(m.frame_locked))
        # points (align 8) and colors (align 4) sequences
        for values, dtype, width, align in ((points, "<f8", 3, 8), (colors, "<f4", 4, 4)):
            at = base + len(buf)
            pad = -at % 4
            if pad and padding is not None:
                pads(((0, pad),), at)
            buf += _ZEROS[pad]
            n = 0 if values is None else len(values)
            buf += _U32.pack(n)
            if not n:
                continue
            at += pad + 4
            pad = -at % align
            if pad and padding is not None:
                pads(((0, pad),), at)
            buf += _ZEROS[pad]
            data = np.ascontiguousarray(values, dtype=dtype).reshape(n, width)
            if data.nbytes > _BIG:
                pieces += [buf, data]
                base += len(buf) + data.nbytes
                buf = bytearray()
            else:
                buf += data.tobytes()
        if m.texture is None and m.uv_coordinates is None and m.mesh_file is None:
            tail, tail_padding = _plain_tail(m.texture_resource, m.text, m.mesh_resource,
                                             bool(m.mesh_use_embedded_materials))
        else:
            tail, tail_padding = _tail(m.texture_resource, m.texture, m.uv_coordinates, m.text,
                                       m.mesh_resource, m.mesh_file, bool(m.mesh_use_embedded_materials))
        if padding is not None:
            pads(tail_padding, base + len(buf))
        buf += tail
    pieces.append(buf)
    return b"".join(pieces)


# ------------------------------------------------------------------------------------------
# The one-time check against rclpy
# ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def fast_path_agrees() -> bool:
    """Whether :func:`marker_array_cdr` gives rclpy's own bytes (outside padding, same length)
    and rclpy reads them back as the same message, on every marker kind (mesh with and
    without colours, skeleton, label with non-ASCII text, DELETE, DELETEALL, a textured one),
    strings of every length mod 4 and both pose alignments. Checked once per process."""
    from rclpy.serialization import deserialize_message, serialize_message
    from visualization_msgs.msg import Marker, MarkerArray

    if tuple(Marker.get_fields_and_field_types().items()) != MARKER_FIELDS:
        return False
    records = sample_records()
    items = [(r, *r.resolved()) for r in records]
    padding: list = []
    data = marker_array_cdr(items, padding)
    reference = serialize_message(MarkerArray(markers=[r.to_msg() for r in records]))
    if len(data) != len(reference):
        return False
    if not np.array_equal(outside_padding(data, padding), outside_padding(reference, padding)):
        return False
    return deserialize_message(data, MarkerArray) == deserialize_message(reference, MarkerArray)


def sample_records() -> List[MarkerRecord]:
    """Markers of every kind this package makes and every field set somewhere, with distinct
    values (for :func:`fast_path_agrees` and the tests)."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CompressedImage
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker, MeshFile

    rng = np.random.default_rng(3)
    headers = [Header(stamp=Time(sec=-5 + i, nanosec=999_999_990 + i), frame_id="camer"[:i]) for i in range(5)]
    table = rng.normal(size=(12, 3))
    index = np.array([0, 3, 11, 3, 2, 7])
    out = []
    for i, ns in enumerate(("", "a", "ab", "abc", "abcd")):
        h = headers[i]
        out.append(MarkerRecord(h, ns + "mesh", i, Marker.TRIANGLE_LIST, Marker.ADD, IDENTITY_POSE, (1.0, 1.0, 1.0),
                                (0.25, 0.5, 0.75, 0.8), (i, 5 * i), False, table,
                                rng.random((12, 4)).astype(np.float32) if i % 2 else None, index))
        out.append(MarkerRecord(h, ns + "skeleton", 2 ** 31 - 1 - i, Marker.LINE_LIST, Marker.ADD,
                                scale=(0.02, 0.0, 0.0), color=(0.1, 0.2, 0.3, 1.0), points=table[:4]))
        out.append(MarkerRecord(h, ns + "label", i, Marker.TEXT_VIEW_FACING, Marker.ADD,
                                (0.5, -0.3, 2.0, 0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.12), (1.0, 1.0, 1.0, 1.0),
                                (2, 0), text="é" * i + " (confirmed) 人"))
        out.append(MarkerRecord(h, ns + "skeleton", i, action=Marker.DELETE))
    out.append(MarkerRecord(headers[1], action=Marker.DELETEALL))
    texture = CompressedImage(header=headers[4], format="png", data=bytes(range(7)))
    out.append(MarkerRecord(headers[2], "textured", 9, Marker.MESH_RESOURCE, Marker.ADD, frame_locked=True,
                            points=table[:3], colors=np.full((3, 4), 0.5, np.float32),
                            texture_resource="embedded://t.png", texture=texture,
                            uv_coordinates=np.array([[0.0, 0.5], [1.0, 0.25], [0.75, 1.0]]),
                            mesh_resource="package://x/y.dae",
                            mesh_file=MeshFile(filename="y.dae", data=bytes(range(5))),
                            mesh_use_embedded_materials=True))
    return out
