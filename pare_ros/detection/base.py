"""Person detections, the detector protocol and the post-filter every detector shares.

All boxes are ``(x_min, y_min, x_max, y_max)`` in pixels of the image given to ``detect``
(float32), scores are in [0, 1] (float32).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, Tuple, runtime_checkable

import cv2
import numpy as np


@dataclass
class Detections:
    """People found in one image: boxes [K,4] xyxy pixels (float32) and scores [K] (float32)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.boxes) != len(self.scores):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.boxes)

    def subset(self, index) -> "Detections":
        return Detections(self.boxes[index], self.scores[index])


@runtime_checkable
class PersonDetector(Protocol):
    """Anything with ``detect(image_rgb uint8 [H,W,3]) -> Detections``."""

    def detect(self, image_rgb: np.ndarray) -> Detections: ...


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """[K,4] xyxy → [K] areas (0 for inverted boxes)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)


def clip_detections(dets: Detections, image_size: Optional[Tuple[int, int]] = None,
                    min_box_height: float = 0.0) -> Detections:
    """Steps 1 and 2 of :func:`filter_detections`, keeping the input order."""
    boxes, scores = dets.boxes, dets.scores
    keep = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    if image_size is not None:
        width, height = image_size
        # np.minimum/maximum rather than np.clip: the same values without np.clip's overhead.
        boxes = np.minimum(np.maximum(boxes, 0), np.array([width, height, width, height], np.float32))
    height_px = boxes[:, 3] - boxes[:, 1]
    keep &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]) & (height_px >= min_box_height)
    return Detections(boxes[keep], scores[keep])


def filter_detections(dets: Detections, image_size: Optional[Tuple[int, int]] = None,
                      min_box_height: float = 0.0, max_people: Optional[int] = None) -> Detections:
    """The shared post-filter.

    1. clip boxes to the image (``image_size`` = (width, height); skipped when None) and drop
       non-finite or empty boxes;
    2. drop boxes shorter than ``min_box_height`` px (after clipping: what PARE would see);
    3. rank by score, ties by area (larger first), and keep the first ``max_people``
       (None or < 0: all). The output is in that order, so index 0 is the best person.
    """
    kept = clip_detections(dets, image_size, min_box_height)
    # np.lexsort sorts by the last key first; negate for descending; stable → deterministic.
    order = np.lexsort((-box_areas(kept.boxes), -kept.scores.astype(np.float64)))
    if max_people is not None and max_people >= 0:
        order = order[:max_people]
    return kept.subset(order)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        score_threshold: float = 0.0) -> np.ndarray:
    """Greedy NMS via ``cv2.dnn.NMSBoxes``: indices kept, best score first.

    boxes [K,4] xyxy; keeps boxes whose score is strictly above ``score_threshold``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), np.asarray(scores, dtype=np.float64).tolist(),
                            float(score_threshold), float(iou_threshold))
    return np.asarray(keep, dtype=np.int64).reshape(-1)


class BaseDetector:
    """Holds the post-filter settings (plain attributes, so a node may change them at runtime)
    and applies :func:`filter_detections` after the subclass's ``_detect``."""

    def __init__(self, min_box_height: float = 0.0, max_people: Optional[int] = None) -> None:
        self.min_box_height = float(min_box_height)
        self.max_people = max_people

    def _detect(self, image_rgb: np.ndarray) -> Detections:  # pragma: no cover - abstract
        raise NotImplementedError

    def detect(self, image_rgb: np.ndarray) -> Detections:
        """uint8 RGB [H,W,3] → filtered :class:`Detections` in its pixels."""
        image_rgb = check_image(image_rgb)
        height, width = image_rgb.shape[:2]
        return filter_detections(self._detect(image_rgb), (width, height),
                                 self.min_box_height, self.max_people)


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate a uint8 [H,W,3] image (clear error instead of an OpenCV assertion)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("detectors take a uint8 RGB image [H,W,3], got "
                         f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
    return image

