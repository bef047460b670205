"""RViz markers of one body: mesh (TRIANGLE_LIST), skeleton (LINE_LIST) and a text label.

Namespaces ``<ns_prefix>mesh``, ``<ns_prefix>skeleton``, ``<ns_prefix>label``; every marker of
a track has id = track_id (mod 2³¹, Marker.id is int32), so (ns, id) is unique per array and a
track's markers can be deleted by id. All points are in ``header.frame_id`` (camera optical).

Cost (see scripts/benchmark_markers.py): a mesh is 13 776 · 3 = 41 328 points (≈1 MB). The
markers are :class:`.marker_cdr.MarkerRecord` (scalars and NumPy arrays) in a
:class:`MarkerBundle`, written straight to CDR bytes for ``Publisher.publish(bytes)``; Marker and
Point objects are built only by ``to_msg()``. For 8 people on the 2-core dev machine (process
time, medians of interleaved runs, build + serialise; before: Marker objects and rclpy's
serialiser with the mesh bytes spliced in): skeletons + labels 1.1 → 0.3 ms, with
track-coloured meshes 6.7 → 3.8 ms, per-vertex colours 11.0 → 6.2 ms. What is left with a mesh
is mostly gathering the 8–13 MB of triangle corners and copying them into the bytes.
"""
from __future__ import annotations

import colorsys
import functools
import threading
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..constants import SMPL_PARENTS
from . import marker_cdr
from .marker_cdr import IDENTITY_POSE, MarkerRecord, colors_from_array, points_from_array  # noqa: F401

NAMESPACES = ("mesh", "skeleton", "label")
HEAD = 15
STATE_NAMES = {0: "tentative", 1: "confirmed", 2: "coasting"}


class InvalidBodyError(ValueError):
    """The body cannot be drawn (non-finite vertices or joints); skip it and count it."""


def marker_id(track_id: int) -> int:
    """Marker.id (int32) for a track: the track ID folded into [0, 2³¹)."""
    return int(track_id) % 2 ** 31


def track_color(track_id: int) -> Tuple[float, float, float]:
    """A stable, well-spread RGB colour per track (golden-ratio hue steps)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.65, 0.95)


def visibility_colors(part_visibility: np.ndarray, vertex_parts: np.ndarray,
                      alpha: float = 1.0) -> np.ndarray:
    """Per-vertex RGBA [6890, 4] float32: red (occluded, 0) → green (visible, 1) from the
    vertex's part (vertex_parts: (6890,) ints in 0..23, argmax of the skinning weights)."""
    # NaN → 0, ±inf → 1/0: what nan_to_num then clip gave, at a third of the cost on 24 values.
    v = np.clip(np.asarray(part_visibility, dtype=np.float32), 0.0, 1.0)
    v[np.isnan(v)] = 0.0
    per_part = np.empty(v.shape + (4,), np.float32)
    per_part[..., 0], per_part[..., 1], per_part[..., 2], per_part[..., 3] = 1.0 - v, v, 0.15, alpha
    # np.take: the same rows as per_part[vertex_parts], several times faster.
    return np.take(per_part, np.asarray(vertex_parts), axis=0)


@functools.lru_cache(maxsize=8)
def _bone_index(parents: Tuple[int, ...]) -> np.ndarray:
    """LINE_LIST point indices [2·bones]: child, parent for every joint that has a parent."""
    return np.array([(j, p) for j, p in enumerate(parents) if p >= 0], dtype=np.intp).reshape(-1)


def _lifetime(lifetime: float) -> Tuple[int, int]:
    """builtin_interfaces/Duration (sec, nanosec) of ``lifetime`` seconds."""
    sec = int(lifetime)
    return sec, int(round((lifetime - sec) * 1e9))


def body_marker_bundle(body, track_id: int, header, faces: np.ndarray,
                       parents: Sequence[int] = SMPL_PARENTS,
                       color: Optional[Sequence[float]] = None, ns_prefix: str = "",
                       include_mesh: bool = True, alpha: float = 1.0, color_mode: str = "track",
                       vertex_parts: Optional[np.ndarray] = None, body_id: str = "",
                       state: Optional[int] = None, lifetime: float = 0.0,
                       line_width: float = 0.02, text_height: float = 0.12) -> MarkerBundle:
    """Like :func:`body_markers` but keeps the mesh's points/colours as NumPy inside a
    :class:`MarkerBundle` (``serialize()`` for the fast path, ``to_msg()`` for objects)."""
    from visualization_msgs.msg import Marker

    if color_mode not in ("track", "visibility"):
        raise ValueError(f"color_mode must be 'track' or 'visibility', not {color_mode!r}")
    joints = np.asarray(body.joints3d, dtype=np.float64)
    if not np.isfinite(joints).all():
        raise InvalidBodyError(f"track {track_id}: non-finite joints, no markers")
    rgb = tuple(float(c) for c in (track_color(track_id) if color is None else tuple(color)[:3]))
    mid = marker_id(track_id)
    life = _lifetime(lifetime)
    records: List[MarkerRecord] = []

    if include_mesh:
        vertices = np.asarray(body.vertices, dtype=np.float64)
        if not np.isfinite(vertices).all():
            raise InvalidBodyError(f"track {track_id}: non-finite vertices, no markers")
        vertex_rgba = None
        mesh_rgba = rgb + (float(alpha),)
        if color_mode == "visibility":
            if vertex_parts is None:
                raise ValueError("color_mode 'visibility' needs vertex_parts")
            # Per-vertex colours turn RViz lighting off; color.a still multiplies their alpha.
            mesh_rgba = (1.0, 1.0, 1.0, 1.0)
            vertex_rgba = visibility_colors(body.part_visibility, vertex_parts, alpha)
        # Triangle corners = vertices[faces]: gathered when serialised (see MarkerBundle).
        # scale 1: it scales the points.
        points, vertex_rgba, index = _bulk_arrays(vertices, vertex_rgba, np.asarray(faces))
        records.append(MarkerRecord(header, ns_prefix + "mesh", mid, Marker.TRIANGLE_LIST, Marker.ADD,
                                    IDENTITY_POSE, (1.0, 1.0, 1.0), mesh_rgba, life, points=points,
                                    colors=vertex_rgba, index=index))

    # Bones as (child, parent) point pairs, gathered like the mesh. Poses are the identity:
    # the points are already in header.frame_id.
    records.append(MarkerRecord(header, ns_prefix + "skeleton", mid, Marker.LINE_LIST, Marker.ADD, IDENTITY_POSE,
                                (float(line_width), 0.0, 0.0), rgb + (1.0,), life, points=joints,
                                index=_bone_index(tuple(parents))))

    head = joints[HEAD if len(joints) > HEAD else int(np.argmin(joints[:, 1]))]
    text = body_id or str(track_id)
    if state is not None:
        text += f" ({STATE_NAMES.get(int(state), str(state))})"
    # Above the head in image-up direction (−y of the optical frame), facing the viewer.
    records.append(MarkerRecord(header, ns_prefix + "label", mid, Marker.TEXT_VIEW_FACING, Marker.ADD,
                                (float(head[0]), float(head[1]) - 0.3, float(head[2]), 0.0, 0.0, 0.0, 1.0),
                                (0.0, 0.0, float(text_height)), (1.0, 1.0, 1.0, 1.0), life, text=text))
    bundle = MarkerBundle()
    bundle.markers = records
    return bundle


def body_markers(body, track_id: int, header, faces: np.ndarray,
                 parents: Sequence[int] = SMPL_PARENTS, color: Optional[Sequence[float]] = None,
                 ns_prefix: str = "", include_mesh: bool = True, alpha: float = 1.0,
                 color_mode: str = "track", vertex_parts: Optional[np.ndarray] = None,
                 body_id: str = "", state: Optional[int] = None, lifetime: float = 0.0) -> list:
    """Markers of one body as visualization_msgs/Marker objects.

    Args:
        body: BodyEstimate (vertices (6890,3), joints3d (24,3) in metres, camera frame;
            part_visibility (24,) for ``color_mode="visibility"``).
        faces: (13776,3) SMPL triangle vertex indices; vertex_parts: (6890,) part per vertex.
        color: RGB in [0,1]; default :func:`track_color`. alpha: mesh alpha (<1 disables
            depth writes in RViz).
        body_id, state: label text ("<body_id> (<state>)"); state 0/1/2 as in SmplBody.
        lifetime: s; 0 = until deleted (use :func:`delete_markers`/:func:`delete_all`).
    Returns:
        [mesh (TRIANGLE_LIST, 41 328 points)?, skeleton (LINE_LIST, 2·23 points), label].
    Raises:
        InvalidBodyError: NaN/Inf in the vertices or joints (RViz rejects such markers).
    """
    return body_marker_bundle(
        body, track_id, header, faces, parents, color, ns_prefix, include_mesh, alpha,
        color_mode, vertex_parts, body_id, state, lifetime).to_msg().markers


def delete_markers(track_id: int, header, ns_prefix: str = "") -> list:
    """DELETE markers for one track's mesh, skeleton and label."""
    from visualization_msgs.msg import Marker

    out = []
    for ns in NAMESPACES:
        m = Marker(ns=ns_prefix + ns, id=marker_id(track_id), action=Marker.DELETE)
        m.header = header
        out.append(m)
    return out


def delete_all(header, ns_prefix: str = "") -> list:
    """DELETEALL: one marker with ns "" (everything on the topic) when ``ns_prefix`` is empty,
    else one per namespace (DELETEALL with ns set only clears that namespace). Put it first in
    a MarkerArray followed by the ADDs to replace the set without flicker."""
    from visualization_msgs.msg import Marker

    namespaces = [""] if not ns_prefix else [ns_prefix + ns for ns in NAMESPACES]
    out = []
    for ns in namespaces:
        m = Marker(ns=ns, action=Marker.DELETEALL)
        m.header = header
        out.append(m)
    return out


# ------------------------------------------------------------------------------------------
# The MarkerBundle
# ------------------------------------------------------------------------------------------
_SCRATCH = threading.local()


def scratch_buffer(name: str, size: int, dtype) -> np.ndarray:
    """The first ``size`` elements of a per-thread buffer ``name`` (1-D, ``dtype``), kept
    between calls: a fresh one of a few MB per frame is returned to the OS by malloc and
    page-faulted in again (≈1 ms per 2 MB here), costlier than filling it. Only for data
    copied out before the next call on the same thread."""
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = np.empty(size, dtype)
        setattr(_SCRATCH, name, buf)
    return buf[:size]


class MarkerBundle:
    """Markers as :class:`.marker_cdr.MarkerRecord` (scalars and NumPy arrays, no message
    objects): ``serialize()`` writes the MarkerArray's CDR bytes for ``Publisher.publish(bytes)``
    (:func:`.marker_cdr.marker_array_cdr`), ``to_msg()`` builds the objects on request.

    ``markers`` is the list of records (``ns``, ``id``, ``action``… as on a Marker). A bulk
    record may hold per-vertex tables and an ``index`` (a mesh: its points are
    ``points[index]``). ``serialize()`` gathers every such marker into one per-thread buffer kept
    between calls and hands NumPy's buffers to the final ``bytes.join``: eight people's meshes
    are 8 MB, and a fresh megabyte array per person (plus a ``tobytes`` copy of each) cost more
    in page faults than the copying itself. If the writer disagreed with rclpy when checked
    (:func:`.marker_cdr.fast_path_agrees`), the objects are serialised by rclpy instead;
    ``last_path`` says which ("cdr" or "objects").
    """

    def __init__(self) -> None:
        self.markers: List[MarkerRecord] = []
        self.last_path = ""

    def append(self, marker, points: Optional[np.ndarray] = None,
               colors: Optional[np.ndarray] = None, index: Optional[np.ndarray] = None) -> None:
        """Add ``marker`` (a MarkerRecord, or a Marker object: its values are copied now);
        ``points`` [V,3] (and ``colors`` [V,4]) become its points (and colours), or with
        ``index`` [K] the rows ``points[index]`` (``colors[index]``). float64/float32 arrays are
        kept by reference until serialised: do not modify them."""
        record = marker if isinstance(marker, MarkerRecord) else MarkerRecord.from_msg(marker)
        if points is not None:
            points, colors, index = _bulk_arrays(points, colors, index)
            record = record.copy(points=points, colors=colors, index=index)
        self.markers.append(record)

    def extend(self, other) -> None:
        """Append another bundle's markers or a list of Marker objects / records."""
        if isinstance(other, MarkerBundle):
            self.markers += other.markers          # records are not changed once in a bundle
            return
        for marker in other:
            self.append(marker)

    def __len__(self) -> int:
        return len(self.markers)

    def to_msg(self):
        """visualization_msgs/MarkerArray of Marker objects (built now, every point an object)."""
        from visualization_msgs.msg import MarkerArray

        return MarkerArray(markers=[record.to_msg() for record in self.markers])

    def serialize(self) -> bytes:
        """CDR bytes of :meth:`to_msg` (rclpy's serialize_message up to padding bytes)."""
        if not marker_cdr.fast_path_agrees():
            from rclpy.serialization import serialize_message

            self.last_path = "objects"
            return serialize_message(self.to_msg())
        self.last_path = "cdr"
        return marker_cdr.marker_array_cdr(self._gathered())

    def _gathered(self) -> list:
        """[(record, points [K,3] float64 | None, colors [K,4] float32 | None)] for every
        record; the indexed ones gathered into one points and one colours scratch buffer."""
        indexed = [r for r in self.markers if r.index is not None and r.points is not None]
        n_points = sum(len(r.index) for r in indexed)
        n_colors = sum(len(r.index) for r in indexed if r.colors is not None)
        point_buf = scratch_buffer("marker_points", n_points * 3, np.float64).reshape(-1, 3)
        color_buf = scratch_buffer("marker_colors", n_colors * 4, np.float32).reshape(-1, 4)
        out, p_at, c_at, in_range = [], 0, 0, {}
        for r in self.markers:
            if r.index is None or r.points is None:
                out.append((r, r.points, r.colors))
                continue
            k = len(r.index)
            points = _take_rows(r.points, r.index, point_buf[p_at:p_at + k], in_range)
            p_at += k
            colors = None
            if r.colors is not None:
                colors = _take_rows(np.asarray(r.colors, np.float32), r.index, color_buf[c_at:c_at + k], in_range)
                c_at += k
            out.append((r, points, colors))
        return out


def _bulk_arrays(points: np.ndarray, colors: Optional[np.ndarray], index: Optional[np.ndarray]):
    """(points [V,3] float64, colors [V,4] float32 | None, index [K] | None), checked."""
    points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    if colors is not None:
        colors = np.ascontiguousarray(colors, dtype=np.float32).reshape(-1, 4)
        if len(colors) != len(points):
            raise ValueError("colors must be as long as points")
    return points, colors, None if index is None else np.asarray(index).reshape(-1)


def _take_rows(table: np.ndarray, index: np.ndarray, out: np.ndarray, in_range: dict) -> np.ndarray:
    """``out[:] = table[index]`` (rows). np.take with ``mode="clip"`` is 2× faster than the
    default (which, given ``out``, gathers into a temporary first to leave ``out`` untouched on
    an error), so the bounds are checked here instead, once per index array and table length
    in this call (``in_range`` caches it; the frame's meshes share one faces array)."""
    key = (index.__array_interface__["data"][0], index.shape, index.strides, index.dtype.str, len(table))
    ok = in_range.get(key)
    if ok is None:
        ok = in_range[key] = bool(len(index) == 0 or (index.min() >= 0 and index.max() < len(table)))
    # Out-of-range (or negative) indices: the checked gather, which raises (or wraps) like points[index].
    return np.take(table, index, axis=0, out=out, mode="clip" if ok else "raise")
