"""sensor_msgs/Image and CompressedImage ⇄ NumPy RGB arrays, with explicit validation.

Every rejected message raises :class:`ImageConversionError`, whose ``reason`` is one of
:data:`REASONS`, so the node can count each kind of bad input in its diagnostics and serve the
next frame. Sizes are checked against :class:`ImageLimits` before any pixel is touched, and a
compressed image's size is read from its header (Pillow, no decoding) before it is decoded, so
a small file claiming a huge picture (a decompression bomb) costs no memory.

Why not cv_bridge: it is missing where pare_ros is tested (PyPI ROS wheels) and optional on
robots, and for the encodings we accept it does what this module does (a strided NumPy view of
``data`` plus one OpenCV colour conversion; 16-bit scaled by 1/256 like cv_bridge), so the
output is the same. Doing it here also gives us the per-reason validation cv_bridge lacks.
"""
from __future__ import annotations

import array
import io
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

#: Fixed set of failure reasons (diagnostic counter names).
REASONS = ("encoding", "step", "truncated", "oversized", "empty", "decode", "image_size",
           "size_mismatch")


@dataclass(frozen=True)
class _Encoding:
    channels: int          # samples per pixel in ``data`` (2 for packed 4:2:2)
    depth: int             # bytes per sample (1 or 2)
    to_rgb: Optional[int]  # cv2.cvtColor code (None: already RGB)


# ROS encoding names (sensor_msgs/image_encodings.hpp) → layout and conversion. "yuv422" is UYVY
# and "yuv422_yuy2" is YUYV (usb_cam's `uyvy` / `yuyv` pixel formats); OpenCV's Bayer codes are
# named after the pattern of the 2nd row/column, so ROS "rggb" is OpenCV "RGGB" = "BG" (the
# tests check each against a mosaic of known colour). 8UCn carry no colour order: BGR as in
# cv_bridge.
ENCODINGS = {
    "rgb8": _Encoding(3, 1, None), "bgr8": _Encoding(3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": _Encoding(4, 1, cv2.COLOR_RGBA2RGB), "bgra8": _Encoding(4, 1, cv2.COLOR_BGRA2RGB),
    "mono8": _Encoding(1, 1, cv2.COLOR_GRAY2RGB), "8uc1": _Encoding(1, 1, cv2.COLOR_GRAY2RGB),
    "8uc3": _Encoding(3, 1, cv2.COLOR_BGR2RGB), "8uc4": _Encoding(4, 1, cv2.COLOR_BGRA2RGB),
    "rgb16": _Encoding(3, 2, None), "bgr16": _Encoding(3, 2, cv2.COLOR_BGR2RGB),
    "rgba16": _Encoding(4, 2, cv2.COLOR_RGBA2RGB), "bgra16": _Encoding(4, 2, cv2.COLOR_BGRA2RGB),
    "mono16": _Encoding(1, 2, cv2.COLOR_GRAY2RGB),
    "yuv422": _Encoding(2, 1, cv2.COLOR_YUV2RGB_UYVY), "uyvy": _Encoding(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": _Encoding(2, 1, cv2.COLOR_YUV2RGB_YUY2), "yuyv": _Encoding(2, 1, cv2.COLOR_YUV2RGB_YUY2),
    **{f"bayer_{p}{bits}": _Encoding(1, bits // 8, getattr(cv2, f"COLOR_Bayer{p.upper()}2RGB"))
       for p in ("rggb", "bggr", "gbrg", "grbg") for bits in (8, 16)},
}
#: Supported raw encodings → samples per pixel (kept for callers of the old table).
CHANNELS = {name: e.channels for name, e in ENCODINGS.items()}


@dataclass(frozen=True)
class ImageLimits:
    """Image sizes the pipeline accepts. ``max_side`` stays below OpenCV's SHRT_MAX (32767)
    limit of ``warpAffine``/``remap``; ``max_pixels`` bounds the decoded size (4096², twice a
    4K UHD frame: 50 MB of RGB, and as much again for OpenCV's BGR); ``min_side`` and ``max_aspect``
    refuse pictures no person detector or crop can use (e.g. 1×100000)."""

    max_side: int = 16384
    max_pixels: int = 4096 * 4096
    min_side: int = 8
    max_aspect: float = 20.0

    def check(self, width: int, height: int, what: str = "image") -> None:
        """Raise ImageConversionError("empty" / "image_size") unless width×height is usable."""
        if width <= 0 or height <= 0:
            raise ImageConversionError("empty", f"{what} has zero size ({width}x{height})")
        problem = None
        if max(width, height) > self.max_side:
            problem = f"a side is above {self.max_side} px"
        elif width * height > self.max_pixels:
            problem = f"{width * height} pixels is above {self.max_pixels}"
        elif min(width, height) < self.min_side:
            problem = f"a side is below {self.min_side} px"
        elif max(width, height) > self.max_aspect * min(width, height):
            problem = f"the aspect ratio is above {self.max_aspect:g}:1"
        if problem:
            raise ImageConversionError(
                "image_size", f"{what} is {width}x{height}: {problem} (refused before decoding; "
                "the limits are the image_limits.* parameters)")


DEFAULT_LIMITS = ImageLimits()


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


def _check_expected(width: int, height: int, expected: Optional[Tuple[int, int]]) -> None:
    if expected is not None and tuple(expected) != (width, height):
        raise ImageConversionError(
            "size_mismatch", f"image is {width}x{height} but camera_info describes "
                             f"{expected[0]}x{expected[1]}")


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    """uint16 → uint8 by 1/256 with rounding and saturation (cv_bridge's mono16 → mono8)."""
    return cv2.convertScaleAbs(pixels, alpha=1.0 / 256.0)


def image_msg_to_rgb(msg, limits: ImageLimits = DEFAULT_LIMITS,
                     expected_size: Optional[Tuple[int, int]] = None, copy: bool = True) -> np.ndarray:
    """sensor_msgs/Image → contiguous uint8 RGB array [height, width, 3].

    Accepts the encodings of :data:`ENCODINGS`: 8-bit rgb/bgr/rgba/bgra/mono (alpha dropped,
    mono replicated), 8UC1/3/4, 16-bit colour and mono (scaled by 1/256, ``is_bigendian``
    honoured), packed 4:2:2 ``yuv422`` (UYVY) / ``yuv422_yuy2`` (YUYV) and ``bayer_*8/16``.
    Honours ``step`` (rows may be padded). The input buffer is never modified; nor aliased,
    unless ``copy`` is False.

    Args:
        limits: accepted sizes, checked first.
        expected_size: (width, height) the CameraInfo describes, or None (unknown).
        copy: False: an ``rgb8`` image without row padding comes back as a *read-only* view of
            the message's data (no copy: ~0.1 ms at 640×480, ~0.7 ms at 1080p), for a caller
            that only reads it while it holds the message (the frame pipeline); every other
            encoding is converted into a new array either way.
    Raises:
        ImageConversionError: reason "empty" (zero width/height), "image_size" (outside
            ``limits``), "size_mismatch" (not ``expected_size``), "encoding" (anything else,
            e.g. 16UC1/32FC1 depth, or 4:2:2 with an odd width), "step" (step < row bytes),
            "truncated" (len(data) < step·height) or "oversized" (len(data) > step·height).
    """
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    limits.check(width, height)
    _check_expected(width, height, expected_size)
    encoding = msg.encoding.strip().lower()
    enc = ENCODINGS.get(encoding)
    if enc is None:
        raise ImageConversionError(
            "encoding", f"unsupported encoding {msg.encoding!r} (supported: {', '.join(ENCODINGS)})")
    if enc.channels == 2 and width % 2:
        raise ImageConversionError("encoding", f"{encoding} packs pixel pairs: width {width} must be even")
    row_bytes = width * enc.channels * enc.depth
    if step < row_bytes:
        raise ImageConversionError(
            "step", f"step {step} < width·channels·bytes = {width}·{enc.channels}·{enc.depth} = {row_bytes}")
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
    # A strided view: rows of `step` bytes, of which the first row_bytes are pixels.
    rows = data.reshape(height, step)[:, :row_bytes]
    if enc.depth == 2:
        # Samples in the message's byte order; ascontiguousarray + view reinterprets the bytes.
        order = ">u2" if msg.is_bigendian else "<u2"
        samples = np.ascontiguousarray(rows).view(order).astype(np.uint16)    # [H, W·C]
        pixels = _to_8bit(samples).reshape(height, width, enc.channels)
    else:
        pixels = rows.reshape(height, width, enc.channels)
    if enc.to_rgb is None:
        if enc.depth == 2:
            return pixels
        # A copy by default: a writable view would alias msg.data (a writable array('B')), so
        # drawing on the result would alter the message. ~1 ms for 1080p.
        if copy or not pixels.flags.c_contiguous:
            return pixels.copy()
        view = pixels.view()
        view.flags.writeable = False
        return view
    if enc.channels == 1:
        pixels = pixels[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(pixels), enc.to_rgb)      # cv2 wants packed rows


# CompressedImage.format values we refuse: compressed depth is not a colour picture.
_DEPTH_FORMAT_MARKERS = ("compresseddepth", "16uc1", "32fc1", "mono16")
# Containers Pillow may parse for the header (fewer parsers, smaller attack surface).
_HEADER_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")


def compressed_dimensions(data) -> Tuple[int, int]:
    """(width, height) from a compressed image's header, without decoding the pixels
    (Pillow parses only the header in ``Image.open``; the pixels are decoded on ``load``).
    Raises as :func:`compressed_header`."""
    return compressed_header(data)[:2]


def compressed_header(data) -> Tuple[int, int, str]:
    """(width, height, container) of a compressed image ("JPEG", "PNG", ...) from its header.

    Raises:
        ImageConversionError: "decode" when no header is recognised, "image_size" when Pillow
            itself calls it a decompression bomb.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(data)), formats=_HEADER_FORMATS) as im:
                return int(im.size[0]), int(im.size[1]), str(im.format)
    except Image.DecompressionBombError as exc:
        raise ImageConversionError("image_size", "compressed image refused before decoding: its "
                                   f"header claims over {2 * Image.MAX_IMAGE_PIXELS} pixels") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for garbage headers
        raise ImageConversionError(
            "decode", f"no JPEG/PNG/TIFF/WebP header in {len(data)} bytes ({type(exc).__name__}: {exc})") from exc


def _bayer_code(fmt: str) -> Optional[int]:
    """cvtColor code for image_transport's "<enc>; <codec> compressed bayer_xxxx" (Kilted's
    jpeg_compress_bayer), else None."""
    coded = fmt.split("compressed", 1)[1].strip() if "compressed" in fmt else ""
    enc = ENCODINGS.get(coded)
    return enc.to_rgb if coded.startswith("bayer_") and enc is not None else None


#: OpenCV ≥ 4.10 decodes straight to RGB (libjpeg-turbo writes RGB instead of BGR: the same
#: values, one full-frame pass less, 0.3–0.5 ms at 720p–1080p); older OpenCV (Ubuntu 24.04's
#: apt 4.6) decodes BGR and converts.
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)


def compressed_msg_to_rgb(msg, limits: ImageLimits = DEFAULT_LIMITS,
                          expected_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG/TIFF/WebP, any format string) → uint8 RGB [H, W, 3].

    The size in the file's header is checked against ``limits`` and ``expected_size``
    (width, height from the CameraInfo; None = unknown) *before* decoding.

    Raises:
        ImageConversionError: reason "empty" (no data), "encoding" (compressedDepth / 16-bit
            formats), "image_size" / "size_mismatch" (from the header) or "decode" (no header,
            or cv2.imdecode failed: corrupt or truncated file).
    """
    fmt = (msg.format or "").lower()
    if any(marker in fmt for marker in _DEPTH_FORMAT_MARKERS):
        raise ImageConversionError("encoding", f"unsupported compressed format {msg.format!r}")
    data = _as_uint8(msg.data)
    if data.size == 0:
        raise ImageConversionError("empty", "compressed image has no data")
    width, height, container = compressed_header(data)
    limits.check(width, height, "compressed image (header)")
    _check_expected(width, height, expected_size)
    if container == "JPEG" and b"\xff\xd9" not in data[-64:].tobytes():
        # libjpeg fills a truncated file's missing rows with grey and OpenCV returns it as if
        # it were whole; the end-of-image marker tells (a little padding after it is allowed).
        raise ImageConversionError("decode", f"truncated JPEG: no end-of-image marker in {data.size} bytes")
    bayer = _bayer_code(fmt)
    # The colour flags always yield 8-bit 3-channel images (grey and 16-bit PNGs are converted).
    decoded = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if bayer is not None else _IMREAD_RGB or cv2.IMREAD_COLOR)
    if decoded is None or decoded.size == 0:
        raise ImageConversionError(
            "decode", f"cannot decode {data.size} bytes of compressed image ({msg.format!r})")
    if decoded.shape[:2] != (height, width):
        raise ImageConversionError(
            "decode", f"decoded {decoded.shape[1]}x{decoded.shape[0]} but the header says {width}x{height}")
    if bayer is not None:
        return cv2.cvtColor(decoded, bayer)
    return decoded if _IMREAD_RGB else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


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
