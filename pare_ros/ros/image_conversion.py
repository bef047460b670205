"""sensor_msgs/Image and CompressedImage ⇄ NumPy RGB arrays, with explicit validation.

Every rejected message raises :class:`ImageConversionError`, whose ``reason`` is one of
:data:`REASONS`, so the node can count each kind of bad input in its diagnostics and serve the
next frame.

Why not cv_bridge: it is missing where pare_ros is tested (PyPI ROS wheels) and optional on
robots, and for the five 8-bit encodings we accept it does exactly what this module does (a
strided NumPy view of ``data`` plus one colour conversion), so the output is identical. Doing it
here also gives us the per-reason validation cv_bridge does not offer.
"""
from __future__ import annotations

import array
from typing import Tuple

import cv2
import numpy as np

#: Fixed set of failure reasons (diagnostic counter names).
REASONS = ("encoding", "step", "truncated", "oversized", "empty", "decode")

#: Supported raw encodings → channels. All are 8-bit, so ``is_bigendian`` is irrelevant.
CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}

# Conversion of each encoding's pixels to RGB (None: already RGB).
_TO_RGB = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
}


class ImageConversionError(ValueError):
    """An image message that cannot be converted. ``reason`` ∈ :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        super().__init__(message)
        self.reason = reason


def _as_uint8(data) -> np.ndarray:
    """Zero-copy uint8 view of a message's ``data`` (bytes, array.array('B') or memoryview)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:           # a plain list (hand-built message): copy
        return np.asarray(data, dtype=np.uint8)


def image_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image → contiguous uint8 RGB array [height, width, 3].

    Accepts rgb8, bgr8, rgba8, bgra8 (alpha dropped) and mono8 (replicated to 3 channels), and
    honours ``step`` (rows may be padded). The input buffer is never modified.

    Raises:
        ImageConversionError: reason "empty" (zero width/height), "encoding" (anything else,
            e.g. mono16/16UC1/bayer/yuv), "step" (step < width·channels), "truncated"
            (len(data) < step·height) or "oversized" (len(data) > step·height).
    """
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    if width <= 0 or height <= 0:
        raise ImageConversionError("empty", f"image has zero size ({width}x{height})")
    encoding = msg.encoding.strip().lower()
    channels = CHANNELS.get(encoding)
    if channels is None:
        raise ImageConversionError(
            "encoding", f"unsupported encoding {msg.encoding!r} (supported: {', '.join(CHANNELS)})")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageConversionError(
            "step", f"step {step} < width·channels = {width}·{channels} = {row_bytes}")
    data = _as_uint8(msg.data)
    expected = step * height
    if data.size < expected:
        raise ImageConversionError(
            "truncated", f"data has {data.size} bytes, step·height = {step}·{height} = {expected}")
    if data.size > expected:
        # Not harmless: it means width/height/step do not describe the buffer (e.g. a driver
        # that forgot to update height), so the picture we would build is probably wrong.
        raise ImageConversionError(
            "oversized", f"data has {data.size} bytes, step·height = {step}·{height} = {expected}")
    # A strided view: rows of `step` bytes, of which the first width·channels are pixels.
    pixels = data.reshape(height, step)[:, :row_bytes].reshape(height, width, channels)
    code = _TO_RGB[encoding]
    if code is None:
        # Always a copy: a view would alias msg.data (writable array('B')), so drawing the
        # debug overlay on the result would alter the message. ~1 ms for 1080p.
        return pixels.copy()
    if channels == 1:
        pixels = pixels[:, :, 0]
    if not pixels.flags.c_contiguous:
        pixels = np.ascontiguousarray(pixels)         # cv2 wants packed rows
    return cv2.cvtColor(pixels, code)


# CompressedImage.format values we refuse: compressed depth is not a colour picture.
_DEPTH_FORMAT_MARKERS = ("compresseddepth", "16uc1", "32fc1", "mono16")


def compressed_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG, any format string) → uint8 RGB [H, W, 3].

    Raises:
        ImageConversionError: reason "empty" (no data), "encoding" (compressedDepth / 16-bit
            formats) or "decode" (cv2.imdecode failed: corrupt or truncated file).
    """
    fmt = (msg.format or "").lower()
    if any(marker in fmt for marker in _DEPTH_FORMAT_MARKERS):
        raise ImageConversionError("encoding", f"unsupported compressed format {msg.format!r}")
    data = _as_uint8(msg.data)
    if data.size == 0:
        raise ImageConversionError("empty", "compressed image has no data")
    # IMREAD_COLOR always yields 8-bit BGR (grey and 16-bit PNGs are converted).
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageConversionError(
            "decode", f"cannot decode {data.size} bytes of compressed image ({msg.format!r})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_image_msg(rgb: np.ndarray, header, encoding: str = "rgb8"):
    """uint8 RGB [H, W, 3] → sensor_msgs/Image (for the debug image).

    ``encoding`` is the wire encoding: "rgb8" (no conversion), "bgr8" or "mono8". The header
    object is used as given (copy the image's header to keep its stamp and frame).
    """
    from sensor_msgs.msg import Image

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 [H,W,3], got {rgb.dtype} {rgb.shape}")
    if encoding == "rgb8":
        pixels = np.ascontiguousarray(rgb)
    elif encoding == "bgr8":
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding == "mono8":
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        raise ValueError(f"unsupported output encoding {encoding!r}")
    height, width = pixels.shape[:2]
    msg = Image()
    msg.header = header
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = width * CHANNELS[encoding]
    # array('B') from bytes is one memcpy, and it is the type the setter stores as is (given
    # bytes with field checks on, it would test every byte in Python).
    msg.data = array.array("B", pixels.tobytes())
    return msg


def image_size(msg) -> Tuple[int, int]:
    """(width, height) of a raw Image message (no validation)."""
    return int(msg.width), int(msg.height)
