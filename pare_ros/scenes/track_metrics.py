"""Tracking and smoothing metrics against a :mod:`.motion` scene's ground truth.

- :func:`mot_summary`: CLEAR-MOT / identity metrics (motmetrics: ID switches, fragmentations,
  false positives, misses, MOTA, IDF1) of published tracks against the visible ground truth.
  The IoU distance is computed here (motmetrics 1.4.0's ``iou_matrix`` fails on NumPy 2).
- :func:`track_ids_of`: which published track ids covered a person, in order.
- :func:`confirmation_time`: s from a person's first detectable frame to the first frame a
  published track covers them.
- :func:`geodesic_deg`, :func:`crossing_time`: rotation error and a lag measure.

``published`` per frame is a list of ``(track_id, box xyxy)``: what the node puts in its
messages (the caller decides which track states are published).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .motion import MotionFrame

METRICS = ["num_switches", "num_fragmentations", "num_false_positives", "num_misses", "mota", "idf1"]
Published = Sequence[Tuple[int, np.ndarray]]


def box_iou(a, b) -> np.ndarray:
    """IoU of boxes a [N,4] and b [M,4] (xyxy) → [N,M]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
             - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _gt(frame: MotionFrame, min_visible: float):
    keep = [i for i, v in enumerate(frame.visible) if v >= min_visible]
    return [frame.gt_ids[i] for i in keep], frame.visible_boxes[keep].reshape(-1, 4)


def mot_summary(frames: Sequence[MotionFrame], published: Sequence[Published], min_iou: float = 0.4,
                min_visible: float = 0.35) -> Dict[str, float]:
    """motmetrics figures of ``published`` against the people at least ``min_visible`` visible
    (their visible boxes), matched at IoU ≥ ``min_iou``. Returns METRICS as a dict."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for f, pub in zip(frames, published):
        ids, boxes = _gt(f, min_visible)
        hyp = np.array([b for _, b in pub]).reshape(-1, 4)
        iou = box_iou(boxes, hyp)
        acc.update(ids, [int(t) for t, _ in pub], np.where(iou >= min_iou, 1 - iou, np.nan))
    row = mm.metrics.create().compute(acc, metrics=METRICS, name="scene").iloc[0].to_dict()
    return {k: float(row[k]) for k in METRICS}


def _cover(frame: MotionFrame, pub: Published, person_id: int, min_iou: float) -> List[int]:
    if person_id not in frame.gt_ids:
        return []
    i = frame.gt_ids.index(person_id)
    if not len(pub):
        return []
    iou = box_iou(frame.visible_boxes[i][None], np.array([b for _, b in pub]))[0]
    return [int(pub[k][0]) for k in np.argsort(-iou) if iou[k] >= min_iou][:1]


def track_ids_of(frames, published, person_id: int, min_iou: float = 0.4) -> List[int]:
    """Published track ids that covered ``person_id`` (best IoU ≥ min_iou), in order of
    appearance, consecutive repeats collapsed."""
    seen: List[int] = []
    for f, pub in zip(frames, published):
        for tid in _cover(f, pub, person_id, min_iou):
            if not seen or seen[-1] != tid:
                seen.append(tid)
    return seen


def confirmation_time(frames, published, person_id: int, min_visible: float = 0.35,
                      min_iou: float = 0.4) -> Optional[float]:
    """s from the person's first frame with ≥ min_visible visible to the first frame a
    published track covers them; None if never."""
    first = None
    for f, pub in zip(frames, published):
        if person_id in f.gt_ids and first is None and f.visible[f.gt_ids.index(person_id)] >= min_visible:
            first = f.stamp
        if first is not None and _cover(f, pub, person_id, min_iou):
            return f.stamp - first
    return None


def geodesic_deg(a, b) -> np.ndarray:
    """Angle in degrees between rotation stacks a, b [...,3,3]."""
    rel = np.swapaxes(np.asarray(a), -1, -2) @ np.asarray(b)
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))


def crossing_time(stamps, values, level: float) -> Optional[float]:
    """First time (linear interpolation) the series ``values`` reaches ``level`` (rising)."""
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(stamps, dtype=np.float64)
    above = np.nonzero(v >= level)[0]
    if not len(above):
        return None
    k = int(above[0])
    if k == 0:
        return float(t[0])
    return float(t[k - 1] + (level - v[k - 1]) / (v[k] - v[k - 1]) * (t[k] - t[k - 1]))


def run_tracker(tracker, frames: Sequence[MotionFrame], image_size=(640, 480),
                published_states=(1, 2)) -> List[List[Tuple[int, np.ndarray]]]:
    """Feed a :class:`~pare_ros.tracking.Tracker` (or one with the same ``update``) the frames'
    detections; per frame the (track_id, box) of the views whose state is published
    (default CONFIRMED and COASTING, as consumers of the node's messages use them)."""
    out = []
    for f in frames:
        views = tracker.update(f.det_boxes, f.det_scores, f.stamp, image_size)
        out.append([(v.track_id, np.asarray(v.box)) for v in views if int(v.state) in published_states])
    return out
