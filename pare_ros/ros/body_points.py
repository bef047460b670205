"""People's mesh vertices as one ``sensor_msgs/PointCloud2`` (``~/body_points``).

For occupancy maps and planners that take point clouds: every vertex of every person in the
image's optical frame, with the person's track ID per point, so a consumer can mark people as
obstacles (or clear them) without knowing SMPL.

Layout: one unorganised cloud (height 1), little-endian, dense, point_step 16 bytes::

    x, y, z   float32   metres, camera optical frame (x right, y down, z forward)
    track_id  uint32    SmplBody.track_id of the point's person
"""
from __future__ import annotations

import array
from typing import Sequence, Tuple

import numpy as np

from .markers import scratch_buffer

POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("track_id", "<u4")])


def body_points_msg(header, people: Sequence[Tuple[int, np.ndarray]], stride: int = 1):
    """PointCloud2 of ``people`` = [(track_id, vertices [V,3])], every ``stride``-th vertex."""
    if stride < 1:
        raise ValueError(f"stride must be ≥ 1, got {stride}")
    # One structured buffer for everybody (reused between frames: structured_cloud_msg copies
    # it out); xyz written through a float32 view of it (one strided copy per person) rather
    # than per-field, per-person temporaries.
    picked = [np.asarray(vertices, dtype=np.float32).reshape(-1, 3)[::stride] for _, vertices in people]
    points = scratch_buffer("body_points", sum(len(v) for v in picked), POINT_DTYPE)
    xyz = points.view(np.float32).reshape(-1, 4)[:, :3]
    ids = points["track_id"]
    start = 0
    for (track_id, _), vertices in zip(people, picked):
        xyz[start:start + len(vertices)] = vertices
        ids[start:start + len(vertices)] = int(track_id) & 0xFFFFFFFF
        start += len(vertices)
    return structured_cloud_msg(header, points)


def structured_cloud_msg(header, points: np.ndarray):
    """An unorganised PointCloud2 whose fields are those of the structured array ``points``
    [N] (float32 and uint32 fields, little-endian), data copied once."""
    from sensor_msgs.msg import PointCloud2, PointField

    datatypes = {np.dtype(np.float32): PointField.FLOAT32, np.dtype(np.uint32): PointField.UINT32}
    dtype = points.dtype
    fields = [PointField(name=name, offset=dtype.fields[name][1], count=1,
                         datatype=datatypes[dtype.fields[name][0]]) for name in dtype.names]
    msg = PointCloud2(header=header, height=1, width=len(points), fields=fields, is_bigendian=False,
                      point_step=dtype.itemsize, row_step=dtype.itemsize * len(points), is_dense=True)
    # ``data`` set afterwards, as an array.array filled straight from the NumPy buffer: passing
    # bytes to the constructor cost 1.5 ms for 8 people (the array is kept as it is where the
    # setter checks fields, copied once where it does not).
    data = array.array("B")
    data.frombytes(memoryview(np.ascontiguousarray(points)).cast("B"))
    msg.data = data
    return msg


def points_from_msg(msg) -> Tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`body_points_msg`: (xyz [N,3] float32, track_ids [N] uint32)."""
    names = [f.name for f in msg.fields]
    if names != list(POINT_DTYPE.names) or msg.point_step != POINT_DTYPE.itemsize or msg.is_bigendian:
        raise ValueError(f"not a pare_ros body-points cloud (fields {names}, step {msg.point_step})")
    points = np.frombuffer(bytes(msg.data), POINT_DTYPE, count=msg.width * msg.height)
    return np.stack([points["x"], points["y"], points["z"]], 1), points["track_id"].copy()
