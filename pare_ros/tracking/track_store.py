"""The smoother's per-track state: one dense row of float64 per track.

:class:`TrackStore` keeps every track's state (Kalman state and covariance, the One Euro
rotations and rates, the betas sums, the held-back estimate, the last accepted one) as one row
of ``data`` [capacity, WIDTH]; :func:`fields` gives named views of a block of rows, so that an
update gathers its tracks' rows once, works on the views and scatters the block back once.
"""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np


class TrackStore:
    """Dense per-track state: one row of ``data`` [capacity, width] per track (rows reused after
    ``drop``). An update gathers its tracks' rows once (into a buffer kept per batch size),
    works on named views of that block (:func:`fields`) and scatters it back once: a few large
    copies instead of two small fancy-index operations per field."""

    FIELDS = dict(x=(6,), P=(6, 6), rot=(24, 3, 3), w=(24, 3), stamp=(), bsum=(10,), wsum=(),
                  frames=(), run=(), pend=(), pend_t=(3,), pend_rot=(24, 3, 3), pend_stamp=(),
                  last_t=(3,), last_stamp=())

    def __init__(self) -> None:
        self.rows: Dict[int, int] = {}
        self.free: List[int] = []
        self.data = np.zeros((0, WIDTH))
        self.scratch: Dict[int, tuple] = {}

    def __getstate__(self):
        """Copies and pickles leave the gather buffers out (their field views would not follow)."""
        return dict(self.__dict__, scratch={})

    def lookup(self, track_ids) -> np.ndarray:
        """Row per id [P] (−1: unknown)."""
        return np.array([self.rows.get(int(t), -1) for t in track_ids], dtype=np.int64)

    def gather(self, rows: np.ndarray):
        """(block [n, width], a copy of those rows; its :func:`fields`). One buffer per n,
        reused by the next gather of n rows, so that its field views are made once."""
        got = self.scratch.get(len(rows))
        if got is None:
            block = np.zeros((len(rows), WIDTH))
            got = self.scratch[len(rows)] = (block, fields(block))
        got[0][...] = self.data[rows]
        return got

    def allocate(self, track_id: int) -> int:
        if not self.free:
            n = len(self.data)
            grow = max(8, n)
            self.data = np.concatenate([self.data, np.zeros((grow, WIDTH))])
            self.free = list(range(n + grow - 1, n - 1, -1))
        row = self.free.pop()
        self.rows[int(track_id)] = row
        return row

    def drop(self, track_id: int) -> None:
        row = self.rows.pop(int(track_id), None)
        if row is not None:
            self.free.append(row)


def _layout():
    """name → (first column, last column + 1, shape) of each field in a row of ``_Store.data``."""
    out, start = {}, 0
    for name, shape in TrackStore.FIELDS.items():
        size = math.prod(shape)
        out[name] = (start, start + size, shape)
        start += size
    return out


LAYOUT = _layout()
WIDTH = max(stop for _, stop, _ in LAYOUT.values())
STAMP = LAYOUT["stamp"][0]
_SLICES = [(name, a, b, shape, not shape) for name, (a, b, shape) in LAYOUT.items()]


def fields(block: np.ndarray) -> Dict[str, np.ndarray]:
    """Views [n, *shape] of each field of a block of rows [n, width]: writing them writes it."""
    n = len(block)
    return {name: block[:, a] if scalar else block[:, a:b].reshape((n,) + shape)
            for name, a, b, shape, scalar in _SLICES}
