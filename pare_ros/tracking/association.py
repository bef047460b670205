"""IoU between boxes and gated Hungarian assignment (scipy's ``linear_sum_assignment``).

Up to ``SCALAR_PAIRS`` (track, detection) pairs, the per-pair arithmetic is done in Python floats:
the same IEEE operations in the same order as the array form (the same results), without its
dozens of NumPy calls, which cost more than the arithmetic for one to a few people."""
from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

SCALAR_PAIRS = 4


def _minimum(a: float, b: float) -> float:
    """np.minimum for two floats (NaN propagates)."""
    return a if a <= b or a != a else b


def _maximum(a: float, b: float) -> float:
    """np.maximum for two floats (NaN propagates)."""
    return a if a >= b or a != a else b


def _iou(p, q) -> float:
    """IoU of two xyxy boxes (sequences of 4 floats), as :func:`iou_matrix` computes each entry."""
    w = _maximum(_minimum(p[2], q[2]) - _maximum(p[0], q[0]), 0.0)
    h = _maximum(_minimum(p[3], q[3]) - _maximum(p[1], q[1]), 0.0)
    inter = w * h
    union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N,4] and b [M,4] (xyxy) → [N,M] in [0,1]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) * len(b) <= SCALAR_PAIRS:
        b_list = b.tolist()
        return np.array([[_iou(p, q) for q in b_list] for p in a.tolist()]).reshape(len(a), len(b))
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
    if n == m == 1:                                   # one pair: taken if allowed
        if bool(allowed[0][0]) and math.isfinite(cost[0, 0]):
            return [(0, 0)], [], []
        return [], [0], [0]
    allowed = np.asarray(allowed, dtype=bool) & np.isfinite(cost)
    big = 1.0 + 2.0 * np.abs(cost[allowed]).sum()                      # (an empty sum is 0)
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    pairs = sorted((r, c) for r, c, ok in zip(rows.tolist(), cols.tolist(), allowed[rows, cols].tolist()) if ok)
    used_r = {r for r, _ in pairs}
    used_c = {c for _, c in pairs}
    return pairs, [r for r in range(n) if r not in used_r], [c for c in range(m) if c not in used_c]


def gated_costs(iou: np.ndarray, d2: np.ndarray, predicted_heights: np.ndarray, detected_heights: np.ndarray,
                iou_threshold: float, max_height_ratio: float, gate: float) -> Tuple[np.ndarray, np.ndarray]:
    """The tracker's gated association costs [N,M] and allowed pairs [N,M] of N predicted boxes and
    M detections (``Tracker._associate``): allowed when IoU ≥ ``iou_threshold`` with heights within
    a factor ``max_height_ratio`` (heights floored at 1e-6 px), or d² ≤ ``gate``; cost =
    (1 − IoU) + min(d²/gate, 1). ``iou``, ``d2`` [N,M]; heights [N] and [M]."""
    log_ratio = math.log(max_height_ratio)
    if iou.size > SCALAR_PAIRS:
        ratio = np.abs(np.log(np.maximum(detected_heights, 1e-6)[None] / np.maximum(predicted_heights, 1e-6)[:, None]))
        allowed = ((iou >= iou_threshold) & (ratio <= log_ratio)) | (d2 <= gate)
        return 1.0 - iou + np.minimum(d2 / gate, 1.0), allowed
    # Per pair in Python floats; the logarithm stays one NumPy call (its library may round
    # differently from Python's).
    det = [_maximum(h, 1e-6) for h in detected_heights.tolist()]
    quotients = [[d / _maximum(p, 1e-6) for d in det] for p in predicted_heights.tolist()]
    ratio = np.abs(np.log(np.array(quotients).reshape(iou.shape))).tolist()
    cost, allowed = [], []
    for iou_row, d2_row, ratio_row in zip(iou.tolist(), d2.tolist(), ratio):
        cost.append([1.0 - i + _minimum(d / gate, 1.0) for i, d in zip(iou_row, d2_row)])
        allowed.append([(i >= iou_threshold and r <= log_ratio) or d <= gate
                        for i, d, r in zip(iou_row, d2_row, ratio_row)])
    return np.array(cost).reshape(iou.shape), np.array(allowed, dtype=bool).reshape(iou.shape)
