"""Input hardening of pare_ros.ros (in-process, real message classes, no DDS): driver encodings
(4:2:2, Bayer, 16-bit), size limits, compressed headers read before decoding, plausible
intrinsics, K = 0 fallback, and the frame processor's non-finite guard. Every expected value
comes from the constructed input (a known colour, a known size), not from the code under test."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs not installed")

from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from pare_ros.camera import Intrinsics  # noqa: E402
from pare_ros.ros import image_conversion  # noqa: E402
from pare_ros.ros.camera_info import (CameraInfoError, distortion_warning,  # noqa: E402
                                      fallback_intrinsics, intrinsics_from_camera_info)
from pare_ros.ros.image_conversion import (ImageConversionError, ImageLimits,  # noqa: E402
                                           compressed_dimensions, compressed_msg_to_rgb,
                                           image_msg_to_rgb)
from pare_ros.ros.stats import ThrottledLog  # noqa: E402

COLOUR = (200, 100, 50)                        # R, G, B of the constant test picture


def raw(data: bytes, width: int, height: int, encoding: str, step: int, bigendian: int = 0) -> Image:
    msg = Image(width=width, height=height, encoding=encoding, step=step, is_bigendian=bigendian)
    msg.data = data
    return msg


# ------------------------------------------------------------------------------------------
# Encodings
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bigendian", [0, 1])
@pytest.mark.parametrize("encoding, order", [("rgb16", "rgb"), ("bgr16", "bgr"), ("rgba16", "rgba"),
                                             ("bgra16", "bgra"), ("mono16", "mono")])
def test_16_bit_encodings_scale_to_8_bit(encoding, order, bigendian):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (9, 14, 3), dtype=np.uint16)
    planes = {"r": rgb[..., 0], "g": rgb[..., 1], "b": rgb[..., 2], "a": np.full(rgb.shape[:2], 77, np.uint16)}
    if order == "mono":
        grey = rgb[..., 1]                              # the expected picture is this grey
        pixels = grey[..., None]
        expected = np.repeat(grey[..., None], 3, axis=2)
    else:
        pixels = np.dstack([planes[c] for c in order])
        expected = rgb
    # value·256 + 100: the low byte is below half a step, so 1/256 rounds back to `value`.
    samples = (pixels * 256 + 100).astype(">u2" if bigendian else "<u2")
    h, w, c = samples.shape
    out = image_msg_to_rgb(raw(samples.tobytes(), w, h, encoding, w * c * 2, bigendian))
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


def test_8uc_encodings_are_grey_and_bgr():
    grey = np.arange(8 * 10, dtype=np.uint8).reshape(8, 10)
    out = image_msg_to_rgb(raw(grey.tobytes(), 10, 8, "8UC1", 10))
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))
    bgr = np.zeros((8, 10, 3), np.uint8) + np.array(COLOUR[::-1], np.uint8)
    np.testing.assert_array_equal(image_msg_to_rgb(raw(bgr.tobytes(), 10, 8, "8UC3", 30))[0, 0], COLOUR)


def packed_422(y: np.ndarray, u: int, v: int, layout: str) -> bytes:
    """Rows of luma ``y`` [H, W] with one chroma pair for the whole picture, packed as UYVY or YUYV."""
    h, w = y.shape
    out = np.empty((h, w, 2), np.uint8)
    out[..., 1 if layout == "uyvy" else 0] = y
    chroma = np.tile(np.array([u, v], np.uint8), (h, w // 2))
    out[..., 0 if layout == "uyvy" else 1] = chroma
    return out.tobytes()


@pytest.mark.parametrize("encoding, layout", [("yuv422", "uyvy"), ("uyvy", "uyvy"),
                                              ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")])
def test_yuv422_encodings_follow_bt601(encoding, layout):
    # BT.601 limited range: Y 16 → black, 235 → white; left and right pixels of a pair differ.
    y = np.tile(np.array([16, 235], np.uint8), (8, 8))
    out = image_msg_to_rgb(raw(packed_422(y, 128, 128, layout), 16, 8, encoding, 32))
    assert (out[:, 0::2] == 0).all() and (out[:, 1::2] == 255).all()
    # Y = 128, Cr = 240: R = 1.164·112 + 1.596·112 (clipped 255), G = 1.164·112 − 0.813·112, B = 1.164·112.
    out = image_msg_to_rgb(raw(packed_422(np.full((8, 16), 128, np.uint8), 128, 240, layout), 16, 8, encoding, 32))
    expected = (255, 1.164 * 112 - 0.813 * 112, 1.164 * 112)
    np.testing.assert_allclose(out[2, 5], expected, atol=1.5)


def test_yuv422_with_odd_width_is_refused():
    with pytest.raises(ImageConversionError, match="even") as err:
        image_msg_to_rgb(raw(bytes(2 * 15 * 8), 15, 8, "yuv422", 30))
    assert err.value.reason == "encoding"


def mosaic(pattern: str, h: int = 12, w: int = 16) -> np.ndarray:
    """A constant-colour scene as a Bayer sensor with ``pattern`` (top-left 2×2, row-major) sees it."""
    value = dict(zip("rgb", COLOUR))
    out = np.empty((h, w), np.uint8)
    for i, colour in enumerate(pattern):
        out[i // 2::2, i % 2::2] = value[colour]
    return out


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_patterns_demosaic_to_the_scene_colour(pattern, bits):
    sensor = mosaic(pattern)
    data = sensor if bits == 8 else (sensor.astype(np.uint16) * 256)
    out = image_msg_to_rgb(raw(data.astype("<u2" if bits == 16 else np.uint8).tobytes(), 16, 12,
                               f"bayer_{pattern}{bits}", 16 * bits // 8))
    np.testing.assert_allclose(out[2:-2, 2:-2].reshape(-1, 3), np.tile(COLOUR, (8 * 12, 1)), atol=2)


def test_compressed_bayer_demosaics():
    ok, png = cv2.imencode(".png", mosaic("rggb"))
    msg = CompressedImage(format="bayer_rggb8; png compressed bayer_rggb8", data=png.tobytes())
    out = compressed_msg_to_rgb(msg)
    np.testing.assert_allclose(out[2:-2, 2:-2].reshape(-1, 3), np.tile(COLOUR, (8 * 12, 1)), atol=2)


# ------------------------------------------------------------------------------------------
# Sizes
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width, height", [(1, 100000), (100000, 1), (20000, 20), (4, 4), (400, 10)])
def test_absurd_sizes_are_refused_before_the_data_is_read(width, height):
    # The data is deliberately empty: the size alone must decide.
    with pytest.raises(ImageConversionError, match=f"{width}x{height}") as err:
        image_msg_to_rgb(raw(b"", width, height, "mono8", width))
    assert err.value.reason == "image_size"


def test_pixel_limit_and_camera_info_size():
    msg = raw(bytes(40 * 30), 40, 30, "mono8", 40)
    with pytest.raises(ImageConversionError) as err:
        image_msg_to_rgb(msg, limits=ImageLimits(max_pixels=1000))
    assert err.value.reason == "image_size"
    with pytest.raises(ImageConversionError, match="640x480") as err:
        image_msg_to_rgb(msg, expected_size=(640, 480))
    assert err.value.reason == "size_mismatch"
    assert image_msg_to_rgb(msg, expected_size=(40, 30)).shape == (30, 40, 3)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A valid 64×48 JPEG whose SOF0 header is rewritten to claim width×height."""
    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_claiming(width: int, height: int) -> bytes:
    """A valid 64×48 PNG whose IHDR (with a correct CRC) claims width×height."""
    ok, buf = cv2.imencode(".png", np.full((48, 64, 3), 90, np.uint8))
    data = bytearray(buf.tobytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    return bytes(data)


@pytest.mark.parametrize("make", [jpeg_claiming, png_claiming])
def test_decompression_bomb_refused_from_the_header(make, monkeypatch):
    bomb, big = make(16384, 16384), make(8000, 8000)      # over Pillow's own limit / over ours
    assert len(bomb) < 2000
    assert compressed_dimensions(big) == (8000, 8000)

    def never(*_):
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(image_conversion.cv2, "imdecode", never)
    for data, text in ((bomb, "header claims over"), (big, "8000x8000")):
        with pytest.raises(ImageConversionError, match=text) as err:
            compressed_msg_to_rgb(CompressedImage(format="jpeg", data=data))
        assert err.value.reason == "image_size"
    # A plausible size that disagrees with the CameraInfo is refused before decoding, too.
    with pytest.raises(ImageConversionError, match="640x480") as err:
        compressed_msg_to_rgb(CompressedImage(format="jpeg", data=make(1280, 720)), expected_size=(640, 480))
    assert err.value.reason == "size_mismatch"


def test_header_claiming_more_than_the_file_holds():
    # libpng refuses the missing rows.
    with pytest.raises(ImageConversionError) as err:
        compressed_msg_to_rgb(CompressedImage(format="png", data=png_claiming(64, 96)))
    assert err.value.reason == "decode"
    # libjpeg would fill missing rows with grey: a JPEG without its end-of-image marker is refused.
    whole = jpeg_claiming(64, 48)
    for data, text in ((whole[:len(whole) // 2], "Truncated"), (whole[:-2], "truncated JPEG")):
        with pytest.raises(ImageConversionError, match=text) as err:
            compressed_msg_to_rgb(CompressedImage(format="jpeg", data=data))
        assert err.value.reason == "decode"
    assert compressed_msg_to_rgb(CompressedImage(format="jpeg", data=whole + bytes(10))).shape == (48, 64, 3)
    with pytest.raises(ImageConversionError) as err:
        compressed_msg_to_rgb(CompressedImage(format="jpeg", data=b"GIF89a" + bytes(100)))
    assert err.value.reason == "decode"


# ------------------------------------------------------------------------------------------
# CameraInfo
# ------------------------------------------------------------------------------------------
def info_with(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480, d=(0.0,) * 5):
    info = CameraInfo(width=width, height=height)
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = list(d)
    info.header.frame_id = "cam"
    return info


@pytest.mark.parametrize("values", [dict(fx=1e300, fy=1e300), dict(fx=5e-324, fy=5e-324),
                                    dict(fx=20.0), dict(fy=40000.0), dict(cx=1e6), dict(cy=-400.0)])
def test_implausible_intrinsics_are_refused(values):
    for source in ("K", "P"):
        with pytest.raises(CameraInfoError) as err:
            intrinsics_from_camera_info(info_with(**values), source)
        assert err.value.reason == "implausible_k"


def test_plausibility_uses_the_image_size_when_camera_info_has_none():
    info = info_with(fx=1e300, fy=1e300, width=0, height=0)
    with pytest.raises(CameraInfoError):
        intrinsics_from_camera_info(info, image_size=(640, 480))
    # A wide-angle (fx = 0.3 W) and a tele (fx = 10 W) lens are fine.
    assert intrinsics_from_camera_info(info_with(fx=200.0, fy=200.0)).fx == 200.0
    assert intrinsics_from_camera_info(info_with(fx=6400.0, fy=6400.0)).fx == 6400.0


def test_roi_outside_the_sensor_is_implausible():
    info = info_with()
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 600, 0, 200, 100
    with pytest.raises(CameraInfoError, match="outside the 640x480 sensor") as err:
        intrinsics_from_camera_info(info)
    assert err.value.reason == "implausible_k"


def test_no_camera_info_means_no_decoding(estimator, monkeypatch):
    from pare_ros.ros.frame_processor import FrameError

    def never(*_):
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(image_conversion.cv2, "imdecode", never)
    msg = CompressedImage(format="png", data=png_claiming(4000, 4000))
    with pytest.raises(FrameError) as err:
        processor(estimator).process(msg, None, want_markers=False)
    assert err.value.reason == "missing_camera_info"


def test_fallback_intrinsics_from_horizontal_fov():
    # 90° horizontal FOV: tan(45°) = 1, so f = half the width.
    assert fallback_intrinsics(640, 480, 90.0).as_tuple() == pytest.approx((320.0, 320.0, 320.0, 240.0))
    with pytest.raises(ValueError, match="fallback_hfov_deg"):
        fallback_intrinsics(640, 480, 0.0)


def test_distortion_warning_only_when_it_applies():
    distorted = info_with(d=(0.1, -0.05, 0.0, 0.0, 0.0))
    assert "distortion" in distortion_warning(distorted, "K")
    assert distortion_warning(distorted, "P") is None                 # rectified input
    assert distortion_warning(info_with(), "K") is None                # D all zero
    assert distortion_warning(info_with(d=()), "K") is None            # D empty
    uncalibrated = info_with(fx=0.0, fy=0.0, cx=0.0, cy=0.0, d=(0.1,))
    assert distortion_warning(uncalibrated, "K") is None


# ------------------------------------------------------------------------------------------
# Throttled logging
# ------------------------------------------------------------------------------------------
def test_throttled_log_counts_what_it_suppresses():
    log = ThrottledLog(period=5.0)
    assert log.message("err", "boom", now=0.0) == "boom"
    assert all(log.message("err", "boom", now=t) is None for t in (1.0, 2.0, 4.9))
    assert log.suppressed("err") == 3
    assert log.message("other", "x", now=2.0) == "x"                   # keys are independent
    assert log.message("err", "boom", now=6.0) == "boom (3 similar messages suppressed in the last 6.0 s)"
    assert log.message("err", "boom", now=12.0) == "boom"


# ------------------------------------------------------------------------------------------
# FrameProcessor: intrinsics and the non-finite guard (zero-cost network, synthetic SMPL)
# ------------------------------------------------------------------------------------------
TWO_BOXES = [(20.0, 20.0, 300.0, 460.0), (340.0, 30.0, 620.0, 470.0)]


@pytest.fixture(scope="module")
def estimator():
    from pare_ros.assets import synthetic_smpl_dir
    from pare_ros.benchmarking.null_network import NullNetwork
    from pare_ros.body_model import BodyModel
    from pare_ros.estimator import BodyEstimator

    return BodyEstimator(NullNetwork(2), BodyModel.from_dir(synthetic_smpl_dir("neutral")))


def processor(estimator, **settings):
    from pare_ros.ros.frame_processor import FrameProcessor, ProcessorSettings
    from pare_ros.ros.pipeline_factory import FixedBoxesDetector
    from pare_ros.tracking import BodySmoother, Tracker

    return FrameProcessor(estimator, FixedBoxesDetector(TWO_BOXES, 0.0, 2), Tracker(min_hits=1, seed=0),
                          ProcessorSettings(**settings), smoother=BodySmoother())


def frame(index: int, width: int = 640, height: int = 480) -> Image:
    """The index-th frame of a 10 Hz camera (the tracker's motion gate expects camera rates)."""
    msg = raw(bytes(width * height), width, height, "mono8", width)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + index // 10, (index % 10) * 100_000_000
    msg.header.frame_id = "cam_optical_frame"
    return msg


def test_extreme_focal_length_is_refused_and_the_tracks_survive(estimator):
    from pare_ros.ros.frame_processor import FrameError

    fp = processor(estimator)
    good = info_with(fx=520.0, fy=530.0)
    ids = {b.track_id for b in fp.process(frame(1), good, want_markers=False).bodies.bodies}
    assert len(ids) == 2
    for k in (dict(fx=1e300, fy=1e300), dict(fx=5e-324, fy=5e-324)):
        with pytest.raises(FrameError) as err:
            fp.process(frame(2), info_with(**k), want_markers=False)
        assert err.value.reason == "implausible_k"
    after = fp.process(frame(3), good, want_markers=False)
    assert {b.track_id for b in after.bodies.bodies} == ids and len(after.transforms) > 0


def test_uncalibrated_camera_gets_fallback_intrinsics_once_warned(estimator):
    from pare_ros.ros.frame_processor import FrameError

    fp = processor(estimator, fallback_hfov_deg=90.0)
    zero = info_with(fx=0.0, fy=0.0, cx=0.0, cy=0.0)
    zero.k = [0.0] * 9
    first = fp.process(frame(1), zero, want_markers=False)
    # 90° over 640 px: f = 320 px, principal point at the centre.
    assert list(first.bodies.intrinsics) == pytest.approx([320.0, 320.0, 320.0, 240.0])
    assert len(first.bodies.bodies) == 2
    assert len(first.warnings) == 1 and "fallback_hfov_deg = 90" in first.warnings[0]
    assert fp.process(frame(2), zero, want_markers=False).warnings == []
    with pytest.raises(FrameError, match="fallback_hfov_deg") as err:
        processor(estimator, fallback_hfov_deg=0.0).process(frame(1), zero, want_markers=False)
    assert err.value.reason == "zero_k"


def test_non_finite_estimate_drops_that_tracks_state_not_the_frame(estimator, monkeypatch):
    import dataclasses

    fp = processor(estimator)
    good = info_with(fx=520.0, fy=530.0)
    first = fp.process(frame(1), good, want_markers=False)
    victim, other = sorted(b.track_id for b in first.bodies.bodies)
    real_estimate = estimator.estimate

    def poisoned(*args, **kwargs):
        out = real_estimate(*args, **kwargs)
        out.bodies[0] = dataclasses.replace(out.bodies[0], transl=np.full(3, np.inf))
        return out

    monkeypatch.setattr(estimator, "estimate", poisoned)
    bad = fp.process(frame(2), good, want_markers=False)
    # The frame is answered; the poisoned person's state is gone, the other person is there.
    assert victim not in fp.smoother and other in fp.smoother
    assert other in {b.track_id for b in bad.bodies.bodies}
    assert any("non-finite" in w for w in bad.warnings)
    for body in bad.bodies.bodies:
        assert np.isfinite(np.asarray(body.joints_3d)).all()
    monkeypatch.setattr(estimator, "estimate", real_estimate)
    healed = fp.process(frame(3), good, want_markers=False)
    assert {b.track_id for b in healed.bodies.bodies} == {victim, other}
    assert all(np.isfinite(np.asarray(b.joints_3d)).all() for b in healed.bodies.bodies)
    assert len(healed.transforms) > 0
