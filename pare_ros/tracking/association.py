"""IoU between boxes and gated Hungarian assignment (scipy's ``linear_sum_assignment``)."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N,4] and b [M,4] (xyxy) → [N,M] in [0,1]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


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
    big = 1.0 + 2.0 * (np.abs(cost[allowed]).sum() if allowed.any() else 0.0)
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    pairs = sorted((int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c])
    used_r = {r for r, _ in pairs}
    used_c = {c for _, c in pairs}
    return pairs, [r for r in range(n) if r not in used_r], [c for c in range(m) if c not in used_c]
