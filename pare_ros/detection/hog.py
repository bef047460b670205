"""Dependency-free fallback: OpenCV's HOG + linear SVM pedestrian detector (Dalal & Triggs).

OpenCV 5 removed ``cv2.HOGDescriptor``; this is why the requirements pin opencv 4.x.
The default people SVM was trained on upright, full-body pedestrians in a 64×128 window
(person about 96 px tall inside it): it is slow-ish, misses sitting, seated-at-desk or
upper-body-only people, and is meant for tests and machines without a YOLO model.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .base import BaseDetector, Detections, nms

WINDOW_HEIGHT = 128   # px, the default people detector's window (64×128)


def margin_to_score(margin: np.ndarray, scale: float = 0.5) -> np.ndarray:
    """SVM margin → [0,1): ``1 − exp(−max(margin, 0) / scale)``.

    0 at the SVM decision boundary, monotone, saturating: margin 0.35 → 0.5, 1.0 → 0.86 with
    the default ``scale`` 0.5. A squash for thresholding and ranking, not a calibrated
    probability (no calibration data ships with OpenCV's SVM).
    """
    return 1.0 - np.exp(-np.clip(np.asarray(margin, dtype=np.float64), 0, None) / scale)


class HogPeopleDetector(BaseDetector):
    """OpenCV HOG people detector with score squashing, upscaling and edge padding.

    Args:
        score_threshold: on the squashed score (:func:`margin_to_score`).
        nms_iou: NMS IoU applied after OpenCV's own rectangle grouping.
        max_people / min_box_height: the shared post-filter.
        hit_threshold: SVM margin a window needs to count as a hit (OpenCV's ``hitThreshold``).
        win_stride: px between windows (8 = OpenCV's default; 4 finds more at 3× the cost).
        scale: pyramid step (1.05 = OpenCV's default).
        group_threshold: OpenCV groups overlapping hits and keeps groups with more members.
        min_height: images shorter than this are upscaled to it first. The window is 128 px,
            so in a 240-px image nobody shorter than half the frame could be found.
        work_height: resize every image to this height (INTER_AREA when shrinking; trades
            small people for speed); None = native resolution (apart from ``min_height``).
        border: pad each side by this fraction of the (working) image height with replicated
            edge pixels, so that windows can extend past the frame and people cut by the image
            edge (close to a robot's camera) are still found. Costs (1+2·border)² more time.
        score_scale: ``scale`` of :func:`margin_to_score`.
    """

    def __init__(self, score_threshold: float = 0.5, nms_iou: float = 0.45,
                 max_people: Optional[int] = 8, min_box_height: float = 48.0,
                 hit_threshold: float = 0.0, win_stride: int = 8, scale: float = 1.05,
                 group_threshold: int = 2, min_height: int = 400,
                 work_height: Optional[int] = None, border: float = 0.0,
                 score_scale: float = 0.5) -> None:
        super().__init__(min_box_height, max_people)
        if not hasattr(cv2, "HOGDescriptor"):
            raise RuntimeError(f"OpenCV {cv2.__version__} has no HOGDescriptor (removed in "
                               "OpenCV 5); install opencv-python-headless 4.x")
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.hit_threshold = float(hit_threshold)
        self.win_stride = int(win_stride)
        self.scale = float(scale)
        self.group_threshold = int(group_threshold)
        self.min_height = int(min_height)
        self.work_height = work_height
        self.border = float(border)
        self.score_scale = float(score_scale)

    def _detect(self, image_rgb: np.ndarray) -> Detections:
        height = image_rgb.shape[0]
        if self.work_height:
            factor = self.work_height / height
        else:
            factor = max(1.0, self.min_height / height)
        image = image_rgb
        if factor != 1.0:
            interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
            image = cv2.resize(image_rgb, None, fx=factor, fy=factor, interpolation=interp)
        pad = int(round(self.border * image.shape[0]))
        if pad:
            image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        if image.shape[0] < WINDOW_HEIGHT or image.shape[1] < WINDOW_HEIGHT // 2:
            return Detections()
        # Colour input: OpenCV takes the channel with the largest gradient per pixel, so the
        # channel order (RGB vs BGR) does not matter.
        rects, margins = self.hog.detectMultiScale(
            image, hitThreshold=self.hit_threshold, winStride=(self.win_stride,) * 2,
            padding=(8, 8), scale=self.scale, groupThreshold=self.group_threshold)
        if len(rects) == 0:
            return Detections()
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        boxes = np.column_stack([rects[:, :2], rects[:, :2] + rects[:, 2:]])
        boxes = (boxes - pad) / factor
        scores = margin_to_score(np.ravel(margins), self.score_scale)
        keep = nms(boxes, scores, self.nms_iou, self.score_threshold)
        return Detections(boxes[keep], scores[keep])
