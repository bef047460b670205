"""vision_msgs/Detection2DArray → :class:`Detections`, duck-typed (vision_msgs is not needed).

Accepted layouts (per detection ``d``):

- box: ``d.bbox.center.position.x/.y`` (vision_msgs ≥ 4, Pose2D with a Point2D) or
  ``d.bbox.center.x/.y`` (older releases), ``d.bbox.size_x/.size_y`` in pixels and an
  optional ``center.theta`` (rad; a rotated box becomes its axis-aligned bounding box);
- labels: ``d.results[j].hypothesis.class_id/.score`` (vision_msgs ≥ 3) or
  ``d.results[j].id/.score`` (2.x and ROS 1).
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import numpy as np

from .base import Detections, filter_detections

# "person" for named classes; "0" is COCO's person index as detectors such as Isaac ROS's
# YOLOv8 decoder write it. Pass person_classes for other label sets.
DEFAULT_PERSON_CLASSES = ("person", "0")


def _center(bbox) -> Tuple[float, float, float]:
    center = bbox.center
    point = getattr(center, "position", center)
    return float(point.x), float(point.y), float(getattr(center, "theta", 0.0) or 0.0)


def _hypotheses(detection) -> Iterable[Tuple[str, float]]:
    for result in getattr(detection, "results", ()) or ():
        hyp = getattr(result, "hypothesis", result)
        label = getattr(hyp, "class_id", None)
        if label is None:
            label = getattr(hyp, "id", "")
        yield str(label).strip().lower(), float(getattr(hyp, "score", 0.0))


def boxes_from_detection2d_array(msg, person_classes: Iterable[str] = DEFAULT_PERSON_CLASSES,
                                 score_threshold: float = 0.0,
                                 image_size: Optional[Tuple[int, int]] = None,
                                 min_box_height: float = 0.0, max_people: Optional[int] = None,
                                 accept_unlabelled: bool = False) -> Detections:
    """Person boxes of a Detection2DArray-like message.

    A detection's person score is the best score among its hypotheses whose class is in
    ``person_classes`` (case-insensitive); detections without one are dropped, as are those
    with a score not above ``score_threshold``. ``accept_unlabelled`` keeps detections with
    no hypotheses at all (single-class detectors), scored 1. Then the shared post-filter
    (clip to ``image_size`` = (width, height) when given, ``min_box_height``, ``max_people``).
    """
    classes = {str(c).strip().lower() for c in person_classes}
    boxes, scores = [], []
    for det in getattr(msg, "detections", ()) or ():
        hyps = list(_hypotheses(det))
        person = [s for label, s in hyps if label in classes]
        if person:
            score = max(person)
        elif not hyps and accept_unlabelled:
            score = 1.0
        else:
            continue
        if score <= score_threshold:
            continue
        cx, cy, theta = _center(det.bbox)
        w, h = float(det.bbox.size_x), float(det.bbox.size_y)
        c, s = abs(np.cos(theta)), abs(np.sin(theta))
        half_w, half_h = (c * w + s * h) / 2, (s * w + c * h) / 2
        boxes.append([cx - half_w, cy - half_h, cx + half_w, cy + half_h])
        scores.append(score)
    return filter_detections(Detections(np.array(boxes, np.float32).reshape(-1, 4), scores),
                             image_size, min_box_height, max_people)
