"""IoU between boxes and gated Hungarian assignment (scipy's ``linear_sum_assignment``)."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N,4] and b [M,4] (xyxy) → [N,M] in [0,1]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    # Intersection width and height [N,M,2] (0 where the boxes do not overlap).
    wh = np.maximum(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None] - inter
    valid = union > 0
    return np.where(valid, inter / np.where(valid, union, 1.0), 0.0)


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
    never displace a valid pair. Returns (matches, unmatched rows, unmatched cols), sorted."""
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return [], list(range(n)), list(range(m))
    allowed = np.asarray(allowed, dtype=bool) & np.isfinite(cost)
    big = 1.0 + 2.0 * np.abs(cost[allowed]).sum()                      # (an empty sum is 0)
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    pairs = sorted((r, c) for r, c, ok in zip(rows.tolist(), cols.tolist(), allowed[rows, cols].tolist()) if ok)
    used_r = {r for r, _ in pairs}
    used_c = {c for _, c in pairs}
    return pairs, [r for r in range(n) if r not in used_r], [c for c in range(m) if c not in used_c]
