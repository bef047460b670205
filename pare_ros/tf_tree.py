"""A ROS-free, time-indexed transform tree (what tf2's buffer does, for machines without tf2_ros).

Each frame has at most one parent. An edge ``parent → child`` holds either one static pose or a
time series of poses ``T_parent_child`` (p_parent = R @ p_child + t). :meth:`TransformTree.lookup`
composes the chain ``target ← … ← common ancestor ← … ← source`` with every dynamic edge evaluated
at the requested stamp:

- between two samples: translation by linear interpolation, rotation by scipy's ``Slerp``;
- after the newest sample by at most ``max_extrapolation`` s: constant-velocity extrapolation
  from the last two samples (a camera on a driving robot moves ~1 cm in 10 ms, so holding the
  last pose would show up as that much human motion); before the oldest sample: never;
- otherwise :class:`ExtrapolationError`, which says how old the newest sample is.

A frame with no path to the other raises :class:`LookupError` subclass :class:`MissingLinkError`
naming both frames and their roots, so a user sees which ``/tf`` publisher is missing.

Stamps are float seconds. Thread-safe (one lock): ROS callbacks add, the worker looks up.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


class TransformError(LookupError):
    """Base class: the transform cannot be given."""


class MissingLinkError(TransformError):
    """No chain connects the two frames (a frame is unknown, or they lie in separate trees)."""


class ExtrapolationError(TransformError):
    """The chain exists, but an edge has no data at the stamp (too old, or too new)."""

    def __init__(self, message: str, age: float) -> None:
        super().__init__(message)
        self.age = age     # s the stamp lies beyond the newest sample (negative: before the oldest)


@dataclass(frozen=True)
class RigidTransform:
    """p_target = rotation @ p_source + translation. rotation (3,3), translation (3,) m."""

    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def identity(cls) -> "RigidTransform":
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_quaternion(cls, quat_xyzw, translation) -> "RigidTransform":
        return cls(Rotation.from_quat(np.asarray(quat_xyzw, dtype=np.float64)).as_matrix(),
                   np.asarray(translation, dtype=np.float64).reshape(3))

    def __matmul__(self, other: "RigidTransform") -> "RigidTransform":
        return RigidTransform(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def inverse(self) -> "RigidTransform":
        rt = self.rotation.T
        return RigidTransform(rt, -rt @ self.translation)

    def apply(self, points) -> np.ndarray:
        """[..., 3] points in the source frame → target frame."""
        return np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def rotate(self, vectors) -> np.ndarray:
        """[..., 3] free vectors (velocities): rotation only."""
        return np.asarray(vectors, dtype=np.float64) @ self.rotation.T

    def quaternion(self) -> np.ndarray:
        """(4,) x, y, z, w."""
        return Rotation.from_matrix(self.rotation).as_quat()


class _Edge:
    """Poses of one child in its parent: static, or samples sorted by stamp."""

    def __init__(self, parent: str, static: bool) -> None:
        self.parent = parent
        self.static = static
        self.stamps: List[float] = []
        self.quats: List[np.ndarray] = []
        self.trans: List[np.ndarray] = []

    def add(self, stamp: float, quat: np.ndarray, trans: np.ndarray, cache_time: float) -> None:
        if self.static:
            self.stamps, self.quats, self.trans = [stamp], [quat], [trans]
            return
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            self.quats[i], self.trans[i] = quat, trans
        else:
            self.stamps.insert(i, stamp)
            self.quats.insert(i, quat)
            self.trans.insert(i, trans)
        cut = bisect.bisect_left(self.stamps, self.stamps[-1] - cache_time)
        if cut:
            del self.stamps[:cut], self.quats[:cut], self.trans[:cut]

    def at(self, stamp: float, max_extrapolation: float, child: str) -> RigidTransform:
        if self.static:
            return RigidTransform.from_quaternion(self.quats[0], self.trans[0])
        s = self.stamps
        if stamp > s[-1] + max_extrapolation or (len(s) == 1 and stamp > s[-1]):
            raise ExtrapolationError(
                f"transform {self.parent} → {child}: newest sample is {stamp - s[-1]:.3f} s older than "
                f"the requested stamp (limit {max_extrapolation:.3f} s)", stamp - s[-1])
        if stamp < s[0]:
            raise ExtrapolationError(
                f"transform {self.parent} → {child}: requested stamp is {s[0] - stamp:.3f} s before the "
                "oldest sample in the buffer", stamp - s[0])
        i = bisect.bisect_left(s, stamp)
        if i < len(s) and s[i] == stamp:
            return RigidTransform.from_quaternion(self.quats[i], self.trans[i])
        i0, i1 = (i - 1, i) if i < len(s) else (len(s) - 2, len(s) - 1)
        t0, t1 = s[i0], s[i1]
        alpha = (stamp - t0) / (t1 - t0)
        trans = (1 - alpha) * self.trans[i0] + alpha * self.trans[i1]
        r0, r1 = Rotation.from_quat(self.quats[i0]), Rotation.from_quat(self.quats[i1])
        if alpha <= 1.0:
            rot = Slerp([t0, t1], Rotation.concatenate([r0, r1]))(stamp)
        else:   # beyond the newest sample: keep turning at the last rate
            rot = Rotation.from_rotvec(alpha * (r1 * r0.inv()).as_rotvec()) * r0
        return RigidTransform(rot.as_matrix(), trans)


class TransformTree:
    """Args:
        cache_time: s of dynamic samples kept per edge (tf2's default: 10 s).
        max_extrapolation: s a lookup may go past an edge's newest sample.
    """

    def __init__(self, cache_time: float = 10.0, max_extrapolation: float = 0.1) -> None:
        self.cache_time = float(cache_time)
        self.max_extrapolation = float(max_extrapolation)
        self._edges: Dict[str, _Edge] = {}
        self._lock = threading.Lock()

    def set_transform(self, parent: str, child: str, stamp: float, quat_xyzw, translation,
                      static: bool = False) -> None:
        """Add one pose of ``child`` in ``parent`` (quaternion x, y, z, w; translation m)."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child or parent == child:
            raise ValueError(f"bad transform {parent!r} → {child!r}")
        q = np.asarray(quat_xyzw, dtype=np.float64).reshape(4)
        norm = np.linalg.norm(q)
        if not np.isfinite(norm) or norm < 1e-9:
            raise ValueError(f"transform {parent} → {child}: invalid quaternion {q}")
        with self._lock:
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent or edge.static != static:
                # A re-parented frame (or one switching static/dynamic) starts afresh, as in tf2.
                edge = self._edges[child] = _Edge(parent, static)
            edge.add(float(stamp), q / norm, np.asarray(translation, dtype=np.float64).reshape(3),
                     self.cache_time)

    def clear(self) -> None:
        """Forget the dynamic samples (e.g. after the clock jumped back); static ones stay."""
        with self._lock:
            self._edges = {c: e for c, e in self._edges.items() if e.static}

    def frames(self) -> List[str]:
        with self._lock:
            return sorted(set(self._edges) | {e.parent for e in self._edges.values()})

    def _path_to_root(self, frame: str) -> List[str]:
        path = [frame]
        while path[-1] in self._edges:
            path.append(self._edges[path[-1]].parent)
            if len(path) > 1000:
                raise MissingLinkError(f"the TF tree has a loop through {frame!r}")
        return path

    def lookup(self, target: str, source: str, stamp: float,
               max_extrapolation: Optional[float] = None) -> RigidTransform:
        """``T_target_source`` at ``stamp``: maps points in ``source`` into ``target``
        (``max_extrapolation``: this lookup's limit instead of the tree's; 0 = data only)."""
        target, source = target.lstrip("/"), source.lstrip("/")
        with self._lock:
            if target == source:
                return RigidTransform.identity()
            up_source, up_target = self._path_to_root(source), self._path_to_root(target)
            common = next((f for f in up_source if f in set(up_target)), None)
            if common is None:
                known = set(self._edges) | {e.parent for e in self._edges.values()}
                missing = [f for f in (target, source) if f not in known]
                detail = (f"unknown frame(s) {missing}" if missing else
                          f"'{source}' belongs to the tree of '{up_source[-1]}', '{target}' to that of "
                          f"'{up_target[-1]}'")
                raise MissingLinkError(f"no transform from '{source}' to '{target}': {detail}")
            limit = self.max_extrapolation if max_extrapolation is None else float(max_extrapolation)
            t_common_source = self._chain(up_source, common, stamp, limit)
            t_common_target = self._chain(up_target, common, stamp, limit)
        return t_common_target.inverse() @ t_common_source

    def _chain(self, path: List[str], common: str, stamp: float, limit: float) -> RigidTransform:
        """T_common_path[0] by composing the edges from path[0] up to ``common``."""
        result = RigidTransform.identity()
        for child in path[:path.index(common)]:
            edge = self._edges[child]
            result = edge.at(stamp, limit, child) @ result
        return result

    def latest_common_stamp(self, target: str, source: str) -> Optional[float]:
        """Newest stamp at which every dynamic edge of the chain has data (None: static only
        or no chain)."""
        target, source = target.lstrip("/"), source.lstrip("/")
        with self._lock:
            up_s, up_t = self._path_to_root(source), self._path_to_root(target)
            common = next((f for f in up_s if f in set(up_t)), None)
            if common is None:
                return None
            edges = [self._edges[c] for c in up_s[:up_s.index(common)] + up_t[:up_t.index(common)]]
            stamps = [e.stamps[-1] for e in edges if not e.static]
            return min(stamps) if stamps else None


def transform_from_msg(transform) -> Tuple[np.ndarray, np.ndarray]:
    """geometry_msgs/Transform (duck-typed) → (quat xyzw (4,), translation (3,))."""
    r, t = transform.rotation, transform.translation
    return np.array([r.x, r.y, r.z, r.w]), np.array([t.x, t.y, t.z])
