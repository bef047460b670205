"""A detector that always returns one fixed box (or the whole frame): single-person set-ups
such as a person in front of a kiosk or a treadmill camera, and tests."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .base import BaseDetector, Detections


class FixedRegionDetector(BaseDetector):
    """Args:
        box: (x_min, y_min, x_max, y_max) in pixels, or in [0,1] fractions of the image with
            ``normalized``; None = the full frame.
        score: the score reported for the box.
        min_box_height: the shared post-filter (applied after clipping to the image).
    """

    def __init__(self, box: Optional[Sequence[float]] = None, normalized: bool = False,
                 score: float = 1.0, min_box_height: float = 0.0, max_people: Optional[int] = 1) -> None:
        super().__init__(min_box_height, max_people)
        if box is not None:
            box = np.asarray(box, dtype=np.float64).reshape(-1)
            if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"fixed detector box must be x_min, y_min, x_max, y_max with "
                                 f"max > min, got {box.tolist()}")
        self.box = box
        self.normalized = bool(normalized)
        self.score = float(score)

    def _detect(self, image_rgb: np.ndarray) -> Detections:
        height, width = image_rgb.shape[:2]
        if self.box is None:
            box = np.array([0.0, 0.0, width, height])
        elif self.normalized:
            box = self.box * np.array([width, height, width, height])
        else:
            box = self.box
        return Detections(box[None], [self.score])
