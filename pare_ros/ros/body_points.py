"""People's mesh vertices as one ``sensor_msgs/PointCloud2`` (``~/body_points``).

For occupancy maps and planners that take point clouds: every vertex of every person in the
image's optical frame, with the person's track ID per point, so a consumer can mark people as
obstacles (or clear them) without knowing SMPL.

Layout: one unorganised cloud (height 1), little-endian, dense, point_step 16 bytes::

    x, y, z   float32   metres, camera optical frame (x right, y down, z forward)
    track_id  uint32    SmplBody.track_id of the point's person

:func:`body_points_bundle` gives a :class:`PointCloudBundle`: the CDR bytes for
``Publisher.publish(bytes)`` written once with NumPy (8 people: 882 kB, one copy of the
points), the PointCloud2 object only on request. rclpy's way costs ~1 ms to build the object
(the ``data`` array) and ~0.5 ms to serialise it. CDR (classic, little endian; alignment
counted after the 4-byte encapsulation header; nothing in it is aligned to 8)::

    int32 sec, uint32 nanosec, string frame_id, uint32 height, width,
    uint32 F + F × (string name, uint32 offset, uint8 datatype, uint32 count),
    bool is_bigendian, uint32 point_step, row_step, uint32 n + uint8 data[n], bool is_dense

Padding bytes are zero (Fast CDR leaves them uninitialised); :func:`fast_path_agrees` checks
the writer against rclpy once, and :meth:`PointCloudBundle.serialize` uses rclpy if they differ.
"""
from __future__ import annotations

import array
import functools
import struct
from typing import List, Sequence, Tuple

import numpy as np

from .cdr import CdrRun, outside_padding
from .markers import scratch_buffer

POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("track_id", "<u4")])
_ENCAPSULATION = b"\x00\x01\x00\x00"        # CDR_LE, no options
_FLOAT32, _UINT32 = 7, 6                     # sensor_msgs/PointField datatypes
_DATATYPES = {np.dtype("<f4"): _FLOAT32, np.dtype("<u4"): _UINT32}


def _gather(people: Sequence[Tuple[int, np.ndarray]], stride: int) -> np.ndarray:
    """[N] POINT_DTYPE of every ``stride``-th vertex of ``people`` = [(track_id, vertices [V,3])],
    in a per-thread buffer reused between frames (copy it out before the next call)."""
    if stride < 1:
        raise ValueError(f"stride must be ≥ 1, got {stride}")
    picked = [np.asarray(vertices).reshape(-1, 3)[::stride] for _, vertices in people]
    points = scratch_buffer("body_points", sum(len(v) for v in picked), POINT_DTYPE)
    # One structured buffer for everybody, written through a [N,4] float32 view: one long
    # strided copy (and float32 cast) per coordinate and person, 3× faster than
    # ``view[:, :3] = vertices`` (whose inner loop is 3 long).
    columns = points.view(np.float32).reshape(-1, 4)
    ids = points["track_id"]
    start = 0
    for (track_id, _), vertices in zip(people, picked):
        block = columns[start:start + len(vertices)]
        for k in range(3):
            block[:, k] = vertices[:, k]
        ids[start:start + len(vertices)] = int(track_id) & 0xFFFFFFFF
        start += len(vertices)
    return points


def body_points_msg(header, people: Sequence[Tuple[int, np.ndarray]], stride: int = 1):
    """PointCloud2 object of ``people`` = [(track_id, vertices [V,3])], every ``stride``-th vertex."""
    return structured_cloud_msg(header, _gather(people, stride))


def body_points_bundle(header, people: Sequence[Tuple[int, np.ndarray]], stride: int = 1) -> "PointCloudBundle":
    """:func:`body_points_msg` as a :class:`PointCloudBundle` (``serialize()`` → CDR bytes,
    ``to_msg()`` → the PointCloud2, ``width``/``points`` without building it)."""
    return PointCloudBundle(header, _gather(people, stride))


def _fields(dtype: np.dtype) -> Tuple[Tuple[str, int, int, int], ...]:
    """(name, offset, datatype, count) per field of a structured dtype of float32/uint32 fields."""
    return tuple((name, dtype.fields[name][1], _DATATYPES[dtype.fields[name][0]], 1)
                 for name in dtype.names)


def structured_cloud_msg(header, points: np.ndarray):
    """An unorganised PointCloud2 whose fields are those of the structured array ``points``
    [N] (float32 and uint32 fields, little-endian), data copied once."""
    from sensor_msgs.msg import PointCloud2, PointField

    dtype = points.dtype
    fields = [PointField(name=name, offset=offset, count=count, datatype=datatype)
              for name, offset, datatype, count in _fields(dtype)]
    msg = PointCloud2(header=header, height=1, width=len(points), fields=fields, is_bigendian=False,
                      point_step=dtype.itemsize, row_step=dtype.itemsize * len(points), is_dense=True)
    # ``data`` set afterwards, as an array.array filled straight from the NumPy buffer: passing
    # bytes to the constructor cost 1.5 ms for 8 people (the array is kept as it is where the
    # setter checks fields, copied once where it does not).
    data = array.array("B")
    data.frombytes(memoryview(np.ascontiguousarray(points)).cast("B"))
    msg.data = data
    return msg


class PointCloudBundle:
    """An unorganised, dense, little-endian PointCloud2 of a structured array, as CDR bytes.

    Args:
        header: std_msgs/Header (stamp and frame_id are written now; kept for ``to_msg``).
        points: [N] structured array of float32/uint32 fields (copied now: it may be a reused
            buffer).

    ``serialize()`` → the bytes of ``serialize_message(to_msg())`` up to padding;
    ``points`` is a read-only view of the points inside those bytes; ``width``, ``height``,
    ``point_step``, ``row_step`` as in the message.
    """

    def __init__(self, header, points: np.ndarray) -> None:
        dtype = points.dtype
        self.header = header
        self.height, self.width = 1, len(points)
        self.point_step, self.row_step = dtype.itemsize, dtype.itemsize * len(points)
        head, _ = _cloud_head(int(header.stamp.sec), int(header.stamp.nanosec), str(header.frame_id),
                              _fields(dtype), dtype.itemsize, len(points))
        # The points are copied once, by the join, from the (reused) gather buffer.
        self._data = b"".join((_ENCAPSULATION, head, np.ascontiguousarray(points), b"\x01"))
        self.points = np.frombuffer(self._data, dtype, count=len(points), offset=len(_ENCAPSULATION) + len(head))

    def cdr(self) -> bytes:
        """The NumPy writer's bytes (classic little-endian CDR), whatever the rmw."""
        return self._data

    def serialize(self) -> bytes:
        """CDR bytes of :meth:`to_msg` for ``Publisher.publish(bytes)``."""
        if not fast_path_agrees():
            from rclpy.serialization import serialize_message

            return serialize_message(self.to_msg())
        return self._data

    def to_msg(self):
        """sensor_msgs/PointCloud2 (built now)."""
        return structured_cloud_msg(self.header, self.points)


def _cloud_head(sec: int, nanosec: int, frame_id: str, fields, point_step: int, n: int) -> Tuple[bytes, List]:
    """(bytes from the stamp to the data length, padding ranges in them) of a cloud of ``n``
    points; then come the data bytes and is_dense (True)."""
    w = CdrRun()
    w.data += struct.pack("<iI", sec, nanosec)
    w.string(frame_id)
    w.u32(1)                        # height
    w.u32(n)                        # width
    w.u32(len(fields))
    for name, offset, datatype, count in fields:
        w.string(name)
        w.u32(offset)
        w.data.append(datatype)
        w.u32(count)
    w.data.append(0)                # is_bigendian
    w.u32(point_step)
    w.u32(point_step * n)           # row_step
    w.u32(point_step * n)           # data length
    return bytes(w.data), w.padding


def cloud_padding(header, points: np.ndarray) -> List[Tuple[int, int]]:
    """The (start, end) ranges of :class:`PointCloudBundle`'s bytes that are alignment padding."""
    _, padding = _cloud_head(int(header.stamp.sec), int(header.stamp.nanosec), str(header.frame_id),
                             _fields(points.dtype), points.dtype.itemsize, len(points))
    return [(start + len(_ENCAPSULATION), end + len(_ENCAPSULATION)) for start, end in padding]


@functools.lru_cache(maxsize=1)
def fast_path_agrees() -> bool:
    """Whether :class:`PointCloudBundle` gives rclpy's own bytes outside padding (same length)
    and rclpy reads them back as the same message: frame names of every length mod 4, 0, 1 and
    3 points, POINT_DTYPE and another layout. Checked once per process."""
    from rclpy.serialization import deserialize_message, serialize_message
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import Header


    other = np.dtype([("a", "<u4"), ("bcd", "<f4")])
    for i, frame_id in enumerate(("", "a", "ab", "abc", "abcd")):
        for dtype in (POINT_DTYPE, other):
            points = np.zeros(i % 4, dtype)
            for k, name in enumerate(dtype.names):
                points[name] = np.arange(len(points)) * (k + 1.5) + 2 ** 31 - 7 * k
            header = Header(stamp=Time(sec=-3 + i, nanosec=999_999_999 - i), frame_id=frame_id)
            bundle = PointCloudBundle(header, points)
            data, reference = bundle.cdr(), serialize_message(bundle.to_msg())
            padding = cloud_padding(header, points)
            if len(data) != len(reference) or not np.array_equal(outside_padding(data, padding),
                                                                 outside_padding(reference, padding)):
                return False
            if deserialize_message(data, PointCloud2) != deserialize_message(reference, PointCloud2):
                return False
    return True


def points_from_msg(msg) -> Tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`body_points_msg` (a PointCloud2 or a :class:`PointCloudBundle`):
    (xyz [N,3] float32, track_ids [N] uint32)."""
    if isinstance(msg, PointCloudBundle):
        msg = msg.to_msg()
    names = [f.name for f in msg.fields]
    if names != list(POINT_DTYPE.names) or msg.point_step != POINT_DTYPE.itemsize or msg.is_bigendian:
        raise ValueError(f"not a pare_ros body-points cloud (fields {names}, step {msg.point_step})")
    points = np.frombuffer(bytes(msg.data), POINT_DTYPE, count=msg.width * msg.height)
    return np.stack([points["x"], points["y"], points["z"]], 1), points["track_id"].copy()
