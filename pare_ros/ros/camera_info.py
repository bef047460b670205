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
REASONS = ("zero_k", "implausible_k", "size_mismatch")

#: Plausible focal lengths, in image widths (fx = 0.05 W is a ~180° fisheye, 50 W a ~1° tele).
FOCAL_RANGE = (0.05, 50.0)
#: The principal point may lie this many image sizes outside the image (lens shift, ROI).
PRINCIPAL_MARGIN = 0.5


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


def _matrix(msg, source: str) -> Tuple[list, Tuple[float, float, float, float]]:
    if source == "K":
        m = [float(v) for v in msg.k]
        return m, (m[0], m[4], m[2], m[5])
    if source == "P":
        m = [float(v) for v in msg.p]
        return m, (m[0], m[5], m[2], m[6])
    raise ValueError(f"intrinsics source must be 'K' or 'P', not {source!r}")


def is_uncalibrated(msg, source: str = "K") -> bool:
    """True when the chosen matrix has zero focal lengths: the driver has no calibration
    (camera_info_manager's isCalibrated() is k[0] != 0; usb_cam without a calibration file
    publishes K = D = P = 0)."""
    _, (fx, fy, _, _) = _matrix(msg, source)
    return fx == 0.0 and fy == 0.0


def _sensor_size(msg, image_size: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
    """Full-resolution (width, height) the matrices refer to: CameraInfo's own size, else the
    published image's size times the binning; None when neither is known."""
    if int(msg.width) > 0 and int(msg.height) > 0:
        return int(msg.width), int(msg.height)
    if image_size is None:
        return None
    bx, by = _binning(msg)
    return int(image_size[0]) * bx, int(image_size[1]) * by


def intrinsics_from_camera_info(msg, source: str = "K",
                                image_size: Optional[Tuple[int, int]] = None) -> Intrinsics:
    """Pinhole intrinsics of the *published* image from a CameraInfo.

    Args:
        source: "K" (raw image: k[0], k[4], k[2], k[5]) or "P" (rectified image: p[0], p[5],
            p[2], p[6]).
        image_size: (width, height) of the published image, for the plausibility check when
            the CameraInfo's width/height are 0.
    Raises:
        CameraInfoError: reason "zero_k" when the chosen matrix is all zeros (uncalibrated
            driver) or has a non-finite or non-positive focal length; "implausible_k" when a
            focal length is outside :data:`FOCAL_RANGE` image widths/heights or the principal
            point more than :data:`PRINCIPAL_MARGIN` image sizes outside the image (e.g.
            fx = 1e300: the 3D placement would overflow), or a ROI outside the sensor.
        ValueError: for an unknown ``source`` (a configuration error, not bad input).
    """
    m, (fx, fy, cx, cy) = _matrix(msg, source)
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        what = "all zeros (uncalibrated camera?)" if not any(m) else f"fx={fx} fy={fy} cx={cx} cy={cy}"
        raise CameraInfoError("zero_k", f"camera_info {source} is invalid: {what}")
    sensor = _sensor_size(msg, image_size)
    if sensor is not None and _roi_active(msg):
        roi = msg.roi
        if int(roi.x_offset) + int(roi.width) > sensor[0] or int(roi.y_offset) + int(roi.height) > sensor[1]:
            raise CameraInfoError("implausible_k", f"camera_info ROI {roi.width}x{roi.height}+{roi.x_offset}+"
                                  f"{roi.y_offset} lies outside the {sensor[0]}x{sensor[1]} sensor")
    if sensor is not None:
        width, height = sensor
        lo, hi = FOCAL_RANGE
        problems = []
        if not (lo * width <= fx <= hi * width and lo * height <= fy <= hi * height):
            problems.append(f"focal length fx={fx:g} fy={fy:g} px is not {lo:g}..{hi:g} image sizes")
        if not (-PRINCIPAL_MARGIN * width <= cx <= (1 + PRINCIPAL_MARGIN) * width
                and -PRINCIPAL_MARGIN * height <= cy <= (1 + PRINCIPAL_MARGIN) * height):
            problems.append(f"principal point ({cx:g}, {cy:g}) is far outside the image")
        if problems:
            raise CameraInfoError("implausible_k", f"camera_info {source} is implausible for a "
                                  f"{width}x{height} sensor: " + "; ".join(problems))
    if _roi_active(msg):
        cx -= int(msg.roi.x_offset)
        cy -= int(msg.roi.y_offset)
    bx, by = _binning(msg)
    return Intrinsics(fx / bx, fy / by, cx / bx, cy / by)


def fallback_intrinsics(width: int, height: int, hfov_deg: float) -> Intrinsics:
    """Intrinsics for an uncalibrated camera: square pixels, principal point at the image
    centre and the given horizontal field of view (a guess: 3D distances scale with it)."""
    if not 1.0 <= hfov_deg <= 179.0:
        raise ValueError(f"camera_info.fallback_hfov_deg must be in [1, 179], got {hfov_deg}")
    return Intrinsics.default_for(int(width), int(height), hfov_deg)


def fallback_warning(frame_id: str, width: int, height: int, hfov_deg: float) -> str:
    """The one-time log line when :func:`fallback_intrinsics` is used."""
    f = fallback_intrinsics(width, height, hfov_deg).fx
    return (f"camera_info of '{frame_id}' has K = 0 (camera not calibrated): using fallback "
            f"intrinsics f = {f:.1f} px from camera_info.fallback_hfov_deg = {hfov_deg:g} deg for "
            f"{width}x{height}. Body distances are only as right as that field of view; calibrate "
            "the camera (camera_calibration) and give the driver its camera_info_url.")


def distortion_warning(info, source: str) -> Optional[str]:
    """The one-time note when intrinsics come from K although D says the image is distorted;
    None when it does not apply: source "P" (rectified input), D empty or all zero, or an
    uncalibrated K (the fallback warning covers that)."""
    if source != "K" or not has_distortion(info) or is_uncalibrated(info, "K"):
        return None
    return (f"camera_info of '{info.header.frame_id}' has non-zero distortion D but the intrinsics "
            "come from K: PARE's perspective placement assumes an undistorted image. Subscribe "
            "to the rectified image (image_rect) with intrinsics_source: P for exact 3D positions.")


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
    """True when any distortion coefficient is non-zero (K then describes a distorted image);
    NaN coefficients (a broken calibration file) do not count as distortion."""
    return any(float(v) != 0.0 and math.isfinite(float(v)) for v in info.d)


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
