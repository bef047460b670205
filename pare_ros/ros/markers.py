"""RViz markers of one body: mesh (TRIANGLE_LIST), skeleton (LINE_LIST) and a text label.

Namespaces ``<ns_prefix>mesh``, ``<ns_prefix>skeleton``, ``<ns_prefix>label``; every marker of
a track has id = track_id (mod 2³¹, Marker.id is int32), so (ns, id) is unique per array and a
track's markers can be deleted by id. All points are in ``header.frame_id`` (camera optical).

Cost (see scripts/benchmark_markers.py): a mesh is 13 776 · 3 = 41 328 points (≈1 MB). rclpy
needs one Python object per point, so we build them bypassing the per-field setter checks
(:func:`points_from_array`), and :class:`MarkerBundle` can skip the objects altogether by
splicing the NumPy bytes into the CDR stream for ``Publisher.publish(bytes)``.
"""
from __future__ import annotations

import colorsys
import functools
import threading
from typing import Optional, Sequence, Tuple

import numpy as np

from ..constants import SMPL_PARENTS

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
    v = np.clip(np.nan_to_num(np.asarray(part_visibility, dtype=np.float32)), 0.0, 1.0)
    per_part = np.stack((1.0 - v, v, np.full_like(v, 0.15), np.full_like(v, alpha)), axis=-1)
    return per_part[np.asarray(vertex_parts)]


@functools.lru_cache(maxsize=8)
def _bone_index(parents: Tuple[int, ...]) -> np.ndarray:
    """LINE_LIST point indices [2·bones]: child, parent for every joint that has a parent."""
    return np.array([(j, p) for j, p in enumerate(parents) if p >= 0], dtype=np.intp).reshape(-1)


def _base(header, ns: str, mid: int, mtype: int, lifetime: float):
    from builtin_interfaces.msg import Duration
    from visualization_msgs.msg import Marker

    m = Marker()
    m.header = header
    m.ns = ns
    m.id = mid
    m.type = mtype
    m.action = Marker.ADD
    m.pose.orientation.w = 1.0          # identity: points are already in header.frame_id
    sec = int(lifetime)
    m.lifetime = Duration(sec=sec, nanosec=int(round((lifetime - sec) * 1e9)))
    return m


def _set_color(m, rgb, alpha: float) -> None:
    m.color.r, m.color.g, m.color.b = (float(c) for c in rgb)
    m.color.a = float(alpha)


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
    rgb = track_color(track_id) if color is None else tuple(color)[:3]
    mid = marker_id(track_id)
    bundle = MarkerBundle()

    if include_mesh:
        vertices = np.asarray(body.vertices, dtype=np.float64)
        if not np.isfinite(vertices).all():
            raise InvalidBodyError(f"track {track_id}: non-finite vertices, no markers")
        faces = np.asarray(faces)
        mesh = _base(header, ns_prefix + "mesh", mid, Marker.TRIANGLE_LIST, lifetime)
        mesh.scale.x = mesh.scale.y = mesh.scale.z = 1.0       # scales the points: must be 1
        vertex_rgba = None
        if color_mode == "visibility":
            if vertex_parts is None:
                raise ValueError("color_mode 'visibility' needs vertex_parts")
            # Per-vertex colours turn RViz lighting off; color.a still multiplies their alpha.
            _set_color(mesh, (1.0, 1.0, 1.0), 1.0)
            vertex_rgba = visibility_colors(body.part_visibility, vertex_parts, alpha)
        else:
            _set_color(mesh, rgb, alpha)
        # Triangle corners = vertices[faces]: gathered when serialised (see MarkerBundle).
        bundle.append(mesh, points=vertices, colors=vertex_rgba, index=faces.reshape(-1))

    skeleton = _base(header, ns_prefix + "skeleton", mid, Marker.LINE_LIST, lifetime)
    skeleton.scale.x = float(line_width)
    _set_color(skeleton, rgb, 1.0)
    # Bones as (child, parent) point pairs, spliced like the mesh (no Point objects).
    bundle.append(skeleton, points=joints, index=_bone_index(tuple(parents)))

    label = _base(header, ns_prefix + "label", mid, Marker.TEXT_VIEW_FACING, lifetime)
    head = joints[HEAD if len(joints) > HEAD else int(np.argmin(joints[:, 1]))]
    # Above the head in image-up direction (−y of the optical frame), facing the viewer.
    label.pose.position.x, label.pose.position.y, label.pose.position.z = (
        float(head[0]), float(head[1]) - 0.3, float(head[2]))
    label.scale.z = float(text_height)
    _set_color(label, (1.0, 1.0, 1.0), 1.0)
    text = body_id or str(track_id)
    if state is not None:
        text += f" ({STATE_NAMES.get(int(state), str(state))})"
    label.text = text
    bundle.append(label)
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
# Fast Point/ColorRGBA lists and the MarkerBundle
# ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _bulk_builder(cls, fields):
    """Factory making ``cls`` objects from floats without the generated per-field checks
    (on Humble they always run; they cost ~3 µs per Point, 150 ms per mesh). Falls back to
    the constructor if the generated class does not have the private slots we expect."""
    slots = set(getattr(cls, "__slots__", ()))
    if not {"_" + f for f in fields} <= slots:
        return lambda *values: cls(**{f: float(v) for f, v in zip(fields, values)})
    # A straight-line function per class (fields are our constants, not input): a loop over
    # setattr would cost as much as the checks we skip. Kilted+ has a _check_fields slot that
    # every instance must carry; Humble/Jazzy do not.
    lines = [f"def make({', '.join(fields)}):", "    obj = new(cls)"]
    lines += [f"    obj._{f} = {f}" for f in fields]
    if "_check_fields" in slots:
        lines.append("    obj._check_fields = False")
    lines.append("    return obj")
    namespace = {"new": cls.__new__, "cls": cls}
    exec("\n".join(lines), namespace)  # noqa: S102
    return namespace["make"]


def points_from_array(points: np.ndarray) -> list:
    """(N,3) array → list of geometry_msgs/Point (float64 values, exact)."""
    from geometry_msgs.msg import Point

    make = _bulk_builder(Point, ("x", "y", "z"))
    cols = np.asarray(points, dtype=np.float64).reshape(-1, 3).T.tolist()
    return list(map(make, *cols))


def colors_from_array(colors: np.ndarray) -> list:
    """(N,4) RGBA array → list of std_msgs/ColorRGBA."""
    from std_msgs.msg import ColorRGBA

    make = _bulk_builder(ColorRGBA, ("r", "g", "b", "a"))
    cols = np.asarray(colors, dtype=np.float32).reshape(-1, 4).astype(np.float64).T.tolist()
    return list(map(make, *cols))


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
    """Markers whose big ``points``/``colors`` stay NumPy arrays until needed.

    ``to_msg()`` gives a MarkerArray of ordinary objects; ``serialize()`` gives its CDR bytes
    for ``Publisher.publish(bytes)`` without creating one Python object per point: it
    serializes the array with a one-element sentinel in each bulk marker, then replaces each
    sentinel (and its sequence length) by the NumPy bytes. In CDR the ``points`` length of a
    Marker directly precedes the data (frame_locked sits at an 8-aligned offset), and the
    replaced spans change by multiples of 8 bytes, so no later alignment moves. Any surprise
    in the layout falls back to the object path (``last_path`` says which was used).

    A bulk marker may hold per-vertex tables and an ``index`` (a mesh: its points are
    ``points[index]``). ``serialize()`` gathers every such marker into one per-thread buffer
    kept between calls and hands NumPy's buffers to the final ``bytes.join``: eight people's
    meshes are 8 MB, and a fresh megabyte array per person (plus a ``tobytes`` copy of each)
    cost more in page faults than the copying itself.
    """

    def __init__(self) -> None:
        self.markers: list = []
        # index → (points [V,3] float64, colors [V,4] float32 | None, index [K] ints | None)
        self._bulk: dict = {}
        self.last_path = ""

    def append(self, marker, points: Optional[np.ndarray] = None,
               colors: Optional[np.ndarray] = None, index: Optional[np.ndarray] = None) -> None:
        """Add ``marker``; ``points`` [V,3] (and ``colors`` [V,4]) become its points (and
        colours), or with ``index`` [K] the rows ``points[index]`` (``colors[index]``).
        float64/float32 arrays are kept by reference until serialised: do not modify them."""
        if points is not None:
            points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
            if colors is not None:
                colors = np.ascontiguousarray(colors, dtype=np.float32).reshape(-1, 4)
                if len(colors) != len(points):
                    raise ValueError("colors must be as long as points")
            if index is not None:
                index = np.asarray(index).reshape(-1)
            self._bulk[len(self.markers)] = (points, colors, index)
        self.markers.append(marker)

    def extend(self, other) -> None:
        """Append another bundle's markers (bulk kept) or a list of Marker objects."""
        if isinstance(other, MarkerBundle):
            for i, marker in enumerate(other.markers):
                self.append(marker, *other._bulk.get(i, (None, None, None)))
        else:
            for marker in other:
                self.append(marker)

    def __len__(self) -> int:
        return len(self.markers)

    def to_msg(self):
        """MarkerArray with every point as an object (fills the bulk markers in place)."""
        from visualization_msgs.msg import MarkerArray

        for i, (points, colors, index) in self._bulk.items():
            if index is not None:
                points = np.take(points, index, axis=0)
                colors = None if colors is None else np.take(colors, index, axis=0)
            self.markers[i].points = points_from_array(points)
            self.markers[i].colors = [] if colors is None else colors_from_array(colors)
        self._bulk.clear()
        return MarkerArray(markers=list(self.markers))

    def serialize(self) -> bytes:
        """CDR bytes of the MarkerArray (same as ``serialize_message(self.to_msg())``)."""
        from rclpy.serialization import serialize_message
        from visualization_msgs.msg import MarkerArray

        if not self._bulk:
            self.last_path = "objects"
            return serialize_message(MarkerArray(markers=list(self.markers)))
        sentinels = {}
        for i in self._bulk:
            p = (1.2345e300 + i * 1e290, -2.3456e300, 3.4567e299)
            c = (1234567.0, -7654321.0, 3.0e30, -2.5e29 - i * 1e23)
            sentinels[i] = (p, c)
            self.markers[i].points = points_from_array(np.array([p]))
            has_colors = self._bulk[i][1] is not None
            self.markers[i].colors = colors_from_array(np.array([c])) if has_colors else []
        try:
            data = serialize_message(MarkerArray(markers=list(self.markers)))
        finally:
            for i in self._bulk:
                self.markers[i].points, self.markers[i].colors = [], []
        spliced = self._splice(data, sentinels)
        if spliced is None:
            self.last_path = "objects"
            return serialize_message(self.to_msg())
        self.last_path = "spliced"
        return spliced

    def _gathered(self) -> dict:
        """index → (points [K,3] float64, colors [K,4] float32 | None) of every bulk marker;
        the indexed ones are gathered into one points and one colours buffer."""
        indexed = [(i, bulk) for i, bulk in self._bulk.items() if bulk[2] is not None]
        n_points = sum(len(index) for _, (_, _, index) in indexed)
        n_colors = sum(len(index) for _, (_, colors, index) in indexed if colors is not None)
        point_buf = scratch_buffer("marker_points", n_points * 3, np.float64).reshape(-1, 3)
        color_buf = scratch_buffer("marker_colors", n_colors * 4, np.float32).reshape(-1, 4)
        out, p_at, c_at = {}, 0, 0
        for i, (points, colors, index) in self._bulk.items():
            if index is None:
                out[i] = (points, colors)
                continue
            # np.take: the same gather as points[index], 4× faster (one axis, contiguous rows).
            gathered = np.take(points, index, axis=0, out=point_buf[p_at:p_at + len(index)])
            p_at += len(index)
            if colors is not None:
                colors = np.take(colors, index, axis=0, out=color_buf[c_at:c_at + len(index)])
                c_at += len(index)
            out[i] = (gathered, colors)
        return out

    def _splice(self, data: bytes, sentinels: dict) -> Optional[bytes]:
        if data[:2] == b"\x00\x01":
            order = "<"
        elif data[:2] == b"\x00\x00":
            order = ">"
        else:
            return None                  # not classic CDR (XCDR1): do not guess
        one = np.array([1], dtype=order + "u4").tobytes()
        edits = []
        for i, (points, colors) in self._gathered().items():
            p_sent, c_sent = sentinels[i]
            needle = np.array(p_sent, dtype=order + "f8").tobytes()
            at = data.find(needle)
            if at < 0 or data.find(needle, at + 1) >= 0 or (at - 4) % 8 != 0:
                return None
            if data[at - 4:at] != one:
                return None
            # NumPy buffers go to bytes.join as they are (no tobytes copy).
            piece = [np.array([len(points)], dtype=order + "u4").tobytes(),
                     points.astype(order + "f8", copy=False)]
            end = at + 24
            if colors is not None:
                c_needle = np.array(c_sent, dtype=order + "f4").tobytes()
                if data[end:end + 4] != one or data[end + 4:end + 20] != c_needle:
                    return None
                piece += [np.array([len(colors)], dtype=order + "u4").tobytes(),
                          colors.astype(order + "f4", copy=False)]
                end += 20
            edits.append((at - 4, end, piece))
        out, pos = [], 0
        for start, end, piece in sorted(edits, key=lambda edit: edit[0]):
            out += [data[pos:start], *piece]
            pos = end
        out.append(data[pos:])
        return b"".join(out)
