"""Pairing images with an upstream detector's results by stamp, whichever arrives second
(ROS-free; messages are opaque).

With ``detector.kind: topic`` the boxes for an image come from another node (a
``vision_msgs/Detection2DArray`` with the image's stamp), typically tens to hundreds of
milliseconds after the image. Instead of making the worker wait for them, images wait here
(at most ``max_images``, newest kept) and an image is released for processing together with
its detections the moment the second of the two arrives. Images the detector never answers
fall out of the queue and are counted, so a detector slower than the camera (it skips frames
itself) costs no stall and no wrong pairing.
"""
from __future__ import annotations

import collections
import threading
from typing import Optional, Tuple

Pair = Tuple[object, object]     # (image message, detections message)


class DetectionPairing:
    """Thread-safe; :meth:`add_image` and :meth:`add_detections` return the completed pair
    (image, detections) or None. ``unanswered`` counts images dropped without detections."""

    def __init__(self, max_images: int = 30, max_detections: int = 30) -> None:
        if max_images < 1 or max_detections < 1:
            raise ValueError("max_images and max_detections must be >= 1")
        self.max_images, self.max_detections = max_images, max_detections
        self._images: "collections.OrderedDict[int, object]" = collections.OrderedDict()
        self._detections: "collections.OrderedDict[int, object]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self.unanswered = 0

    def add_image(self, stamp_ns: int, image) -> Optional[Pair]:
        with self._lock:
            detections = self._detections.pop(stamp_ns, None)
            if detections is not None:
                return image, detections
            self._images.pop(stamp_ns, None)
            self._images[stamp_ns] = image
            while len(self._images) > self.max_images:
                self._images.popitem(last=False)
                self.unanswered += 1
            return None

    def add_detections(self, stamp_ns: int, detections) -> Optional[Pair]:
        with self._lock:
            image = self._images.pop(stamp_ns, None)
            if image is not None:
                # Older images still waiting will not be processed after this newer one (the
                # node serves only the newest frame): count them now, not when they fall out.
                older = [s for s in self._images if s < stamp_ns]
                for s in older:
                    del self._images[s]
                self.unanswered += len(older)
                return image, detections
            # Detections before their image (rare: a detector on another copy of the stream).
            self._detections[stamp_ns] = detections
            while len(self._detections) > self.max_detections:
                self._detections.popitem(last=False)
            return None

    def pending(self) -> int:
        with self._lock:
            return len(self._images)

    def clear(self) -> None:
        with self._lock:
            self._images.clear()
            self._detections.clear()
