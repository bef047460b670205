"""Pairing images with CameraInfo without busy waiting (ROS-free; messages are duck-typed).

Image and CameraInfo travel on separate topics, so the info with an image's exact stamp may
arrive a moment after the image, never (a dropped best-effort sample), or only once (drivers
that latch one calibration). :class:`InfoPairing` serves, per camera (``header.frame_id``):

* the info with the image's exact stamp when it has it ("exact");
* else, only while that camera's stream is *exactly paired* (its last image had its own info,
  or an info later turned up for an image served without one, or it is the node's very first
  image), a wait on a condition variable
  that the info callback notifies, at most ``wait`` seconds — no polling;
* else the latest *valid* info of that camera for the image's size ("latest"), so a camera whose
  CameraInfo rarely changes needs no info per image and one invalid info (zero K) does not
  replace a good calibration;
* else nothing ("missing").

A miss after waiting marks the stream unpaired, so a dropped info costs one wait, not one per
frame; the stream is paired again as soon as an exact match is seen.
"""
from __future__ import annotations

import collections
import threading
from typing import Callable, Dict, Optional, Tuple

from .camera_info import expected_image_size, stamp_to_ns

Size = Optional[Tuple[int, int]]


class InfoPairing:
    """Thread-safe: :meth:`add` runs in the CameraInfo callback, :meth:`lookup` in the worker.

    Args:
        size: infos kept for exact-stamp lookup (by arrival order).
        wait: seconds :meth:`lookup` may wait for the exact info while the stream is paired.
        is_valid: ``info -> bool``; only valid infos become a camera's "latest" (e.g. a
            non-zero K). The exact-stamp info is returned even when invalid, so the caller
            can count and report it.
    """

    def __init__(self, size: int = 20, wait: float = 0.1,
                 is_valid: Callable[[object], bool] = lambda info: True) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size, self.wait, self.is_valid = size, float(wait), is_valid
        self._by_stamp: "collections.OrderedDict[Tuple[str, int], object]" = collections.OrderedDict()
        self._latest: Dict[Tuple[str, Size], object] = {}     # (frame_id, image size) → info
        self._paired: Dict[str, bool] = {}                    # frame_id → exactly paired stream
        self._served_without = collections.deque(maxlen=size)  # (frame_id, stamp) served "latest"
        self._received = 0
        self.waits = 0          # lookups that waited for an exact info (diagnostics, tests)
        self._cond = threading.Condition()

    @property
    def received(self) -> int:
        """Number of infos ever added."""
        with self._cond:
            return self._received

    def add(self, info) -> None:
        frame = info.header.frame_id
        key = (frame, stamp_to_ns(info.header.stamp))
        with self._cond:
            self._received += 1
            self._by_stamp.pop(key, None)        # a re-sent stamp: newest content, newest position
            self._by_stamp[key] = info
            while len(self._by_stamp) > self.size:
                self._by_stamp.popitem(last=False)
            if self.is_valid(info):
                self._latest[(frame, expected_image_size(info))] = info
            if key in self._served_without:
                # The info exists, it was only late: wait for it next time.
                self._paired[frame] = True
            self._cond.notify_all()

    def lookup(self, stamp, frame_id: str, image_size: Size = None,
               allow_latest: bool = True) -> Tuple[Optional[object], str]:
        """(info, mode) for an image; mode is "exact", "latest" or "missing" (info None).

        Args:
            stamp: builtin_interfaces/Time or int nanoseconds of the image.
            image_size: (width, height) of the image; "latest" then only serves an info of
                that size or one that does not state its size.
        """
        key = (frame_id, stamp_to_ns(stamp))
        with self._cond:
            info = self._by_stamp.get(key)
            # The node's very first image counts as paired: its info may trail it (seen with
            # Jazzy's Fast DDS). Later unknown frame_ids do not wait, so images with made-up
            # frame_ids cannot stall the worker.
            if info is None and self._paired.get(frame_id, not self._paired) and self.wait > 0:
                self.waits += 1
                self._cond.wait_for(lambda: key in self._by_stamp, timeout=self.wait)
                info = self._by_stamp.get(key)
            if info is not None:
                self._paired[frame_id] = True
                return info, "exact"
            self._paired[frame_id] = False
            if allow_latest:
                candidate = self._latest.get((frame_id, tuple(image_size) if image_size else None))
                if candidate is None:
                    candidate = self._latest.get((frame_id, None))
                if candidate is None and image_size is None:
                    candidate = next((v for (f, _), v in self._latest.items() if f == frame_id), None)
                if candidate is not None:
                    self._served_without.append(key)
                    return candidate, "latest"
            return None, "missing"

    def clear(self) -> None:
        with self._cond:
            self._by_stamp.clear()
            self._latest.clear()
            self._paired.clear()
            self._served_without.clear()
