"""sensor_msgs/CameraInfo → :class:`pare_ros.camera.Intrinsics`, size checks and stamp pairing.

Conventions (sensor_msgs/CameraInfo): ``K`` (``k`` in ROS 2) describes the raw, distorted
image; ``P`` (``p``) the rectified one, so ``source="P"`` is for ``image_rect*`` inputs. Both
refer to the full-resolution sensor; when the driver publishes a binned and/or ROI image we
scale/shift the intrinsics to the published image like image_geometry does.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Optional, Tuple

from ..camera import Intrinsics

#: Fixed set of failure reasons (diagnostic counter names).
REASONS = ("zero_k", "size_mismatch")


class CameraInfoError(ValueError):
    """A CameraInfo that cannot be used. ``reason`` ∈ :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        super().__init__(message)
        self.reason = reason


def _binning(info) -> Tuple[int, int]:
    # 0 and 1 both mean "no binning" (CameraInfo.msg).
    return max(int(info.binning_x), 1), max(int(info.binning_y), 1)


def _roi_active(info) -> bool:
    roi = info.roi
    # An all-zero ROI (or one covering the full image) means full resolution.
    return int(roi.width) > 0 and int(roi.height) > 0 and not (
        int(roi.x_offset) == 0 and int(roi.y_offset) == 0
        and int(roi.width) == int(info.width) and int(roi.height) == int(info.height))


def intrinsics_from_camera_info(msg, source: str = "K") -> Intrinsics:
    """Pinhole intrinsics of the *published* image from a CameraInfo.

    Args:
        source: "K" (raw image: k[0], k[4], k[2], k[5]) or "P" (rectified image: p[0], p[5],
            p[2], p[6]).
    Raises:
        CameraInfoError: reason "zero_k" when the chosen matrix is all zeros (uncalibrated
            driver) or has a non-finite or non-positive focal length.
        ValueError: for an unknown ``source`` (a configuration error, not bad input).
    """
    if source == "K":
        m = [float(v) for v in msg.k]
        fx, fy, cx, cy = m[0], m[4], m[2], m[5]
    elif source == "P":
        m = [float(v) for v in msg.p]
        fx, fy, cx, cy = m[0], m[5], m[2], m[6]
    else:
        raise ValueError(f"intrinsics source must be 'K' or 'P', not {source!r}")
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        what = "all zeros (uncalibrated camera?)" if not any(m) else f"fx={fx} fy={fy} cx={cx} cy={cy}"
        raise CameraInfoError("zero_k", f"camera_info {source} is invalid: {what}")
    if _roi_active(msg):
        cx -= int(msg.roi.x_offset)
        cy -= int(msg.roi.y_offset)
    bx, by = _binning(msg)
    return Intrinsics(fx / bx, fy / by, cx / bx, cy / by)


def expected_image_size(info) -> Optional[Tuple[int, int]]:
    """(width, height) of the images this CameraInfo describes, after ROI and binning; None
    when the CameraInfo does not say (width = height = 0)."""
    width, height = int(info.width), int(info.height)
    if width == 0 and height == 0:
        return None
    if _roi_active(info):
        width, height = int(info.roi.width), int(info.roi.height)
    bx, by = _binning(info)
    return width // bx, height // by


def check_image_size(info, width: int, height: int) -> None:
    """Raise CameraInfoError("size_mismatch") unless the image is the size ``info`` describes.
    An unknown size (width = height = 0 in the CameraInfo) is accepted."""
    expected = expected_image_size(info)
    if expected is not None and expected != (int(width), int(height)):
        raise CameraInfoError(
            "size_mismatch",
            f"image is {width}x{height} but camera_info describes {expected[0]}x{expected[1]}")


def has_distortion(info) -> bool:
    """True when any distortion coefficient is non-zero (K then describes a distorted image)."""
    return any(float(v) != 0.0 for v in info.d)


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time (or an int of nanoseconds) → int nanoseconds."""
    if isinstance(stamp, int):
        return stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class CameraInfoCache:
    """The last ``size`` CameraInfo messages, keyed by (frame_id, stamp), for pairing images.

    ``add`` is called from the camera_info callback and ``lookup`` from the worker thread, so
    both take a lock. Eviction is by arrival order; "latest" also means most recently
    *received*, which keeps working when a bag loops and stamps jump backwards.
    """

    def __init__(self, size: int = 10, allow_latest: bool = True) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self.allow_latest = allow_latest
        self._items: "OrderedDict[Tuple[str, int], object]" = OrderedDict()
        self._lock = threading.Lock()

    def add(self, info) -> None:
        key = (info.header.frame_id, stamp_to_ns(info.header.stamp))
        with self._lock:
            self._items.pop(key, None)          # re-sent stamp: newest content, newest position
            self._items[key] = info
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def lookup(self, stamp, frame_id: str, allow_latest: Optional[bool] = None,
               image_size: Optional[Tuple[int, int]] = None) -> Tuple[Optional[object], str]:
        """CameraInfo for an image with this stamp and frame_id.

        Returns (info, mode): mode "exact" (same frame and stamp), "latest" (the most recent
        one with the same frame, and – when ``image_size`` (width, height) is given – a
        matching or unknown size; only if allowed) or "missing" with info None.
        """
        allow = self.allow_latest if allow_latest is None else allow_latest
        key = (frame_id, stamp_to_ns(stamp))
        with self._lock:
            info = self._items.get(key)
            if info is not None:
                return info, "exact"
            if allow:
                for (frame, _), candidate in reversed(self._items.items()):
                    if frame != frame_id:
                        continue
                    if image_size is not None:
                        expected = expected_image_size(candidate)
                        if expected is not None and expected != tuple(image_size):
                            continue
                    return candidate, "latest"
        return None, "missing"
