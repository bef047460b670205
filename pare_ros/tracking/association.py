"""IoU between boxes and gated Hungarian assignment (scipy's ``linear_sum_assignment``)."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

_ZERO = np.array(0.0)   # a 0-d operand: NumPy 2 converts a Python scalar on every call


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N,4] and b [M,4] (xyxy) → [N,M] in [0,1]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    # Intersection width and height [N,M,2] (0 where the boxes do not overlap).
    wh = np.maximum(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), _ZERO)
    inter = wh[..., 0] * wh[..., 1]
    size_a, size_b = a[:, 2:] - a[:, :2], b[:, 2:] - b[:, :2]          # [N,2], [M,2] (w, h)
    union = (size_a[:, 0] * size_a[:, 1])[:, None] + size_b[:, 0] * size_b[:, 1] - inter
    return np.divide(inter, union, out=np.zeros(inter.shape), where=union > _ZERO)


def match(iou: np.ndarray, min_iou: float) -> Tuple[List[Tuple[int, int]], List[int], List[int]]:
    """Maximum-total-IoU one-to-one assignment keeping only pairs with IoU ≥ ``min_iou``.

    Pairs below the gate are priced out before solving (cost 1 − IoU, gated pairs a constant
    above any real cost), so a gated pair never displaces a valid one. Deterministic.
    Returns (matches as (row, col), unmatched rows, unmatched cols), each sorted.
    """
    return assign(1.0 - np.asarray(iou, dtype=np.float64), np.asarray(iou) >= min_iou)


def assign(cost: np.ndarray, allowed: np.ndarray) -> Tuple[List[Tuple[int, int]], List[int], List[int]]:
    """Minimum-total-cost one-to-one assignment among the ``allowed`` pairs (cost [N,M],
    allowed [N,M] bool). Disallowed pairs are priced above any sum of allowed ones, so they
    never displace a valid pair. Returns (matches, unmatched rows, unmatched cols), sorted.

    When no row and no column has two allowed pairs (people apart: the usual frame), those
    pairs are the solution, found without solving: an assignment that leaves one out pays one
    more ``big`` and saves at most 2·Σ|allowed cost| < ``big``. (The margin of 1 is far above the
    solver's round-off for costs of a few units, as the tracker's.)"""
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return [], list(range(n)), list(range(m))
    allowed = np.asarray(allowed, dtype=bool) & np.isfinite(cost)
    allowed_r, allowed_c = (i.tolist() for i in np.nonzero(allowed))    # row-major: sorted
    if len(set(allowed_r)) == len(allowed_r) and len(set(allowed_c)) == len(allowed_c):
        pairs = list(zip(allowed_r, allowed_c))
    else:
        big = 1.0 + 2.0 * np.add.reduce(np.abs(cost[allowed]))         # (ndarray.sum, less wrapped)
        rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
        ok = set(zip(allowed_r, allowed_c))
        pairs = sorted(p for p in zip(rows.tolist(), cols.tolist()) if p in ok)
    used_r = {r for r, _ in pairs}
    used_c = {c for _, c in pairs}
    return pairs, [r for r in range(n) if r not in used_r], [c for c in range(m) if c not in used_c]
