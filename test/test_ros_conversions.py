"""Image/CameraInfo conversion, SmplBody messages and statistics of pare_ros.ros
(in-process, real message classes, no DDS)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (source scripts/env.sh)")
pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs not installed")
pytest.importorskip("diagnostic_msgs.msg", reason="diagnostic_msgs not installed")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from pare_ros.camera import Intrinsics  # noqa: E402
from pare_ros.ros import stats  # noqa: E402
from pare_ros.ros.camera_info import (CameraInfoCache, CameraInfoError, check_image_size,  # noqa: E402
                                      expected_image_size, has_distortion,
                                      intrinsics_from_camera_info)
from pare_ros.ros.image_conversion import (REASONS, ImageConversionError,  # noqa: E402
                                           compressed_msg_to_rgb, image_msg_to_rgb,
                                           rgb_to_image_msg)

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)      # odd sizes catch stride bugs


def encode(rgb, encoding, pad=0, is_bigendian=0):
    """Build an Image the way a driver would (optionally with `pad` bytes per row)."""
    pixels = {"rgb8": rgb, "bgr8": rgb[..., ::-1],
              "rgba8": np.dstack((rgb, np.full(rgb.shape[:2], 200, np.uint8))),
              "bgra8": np.dstack((rgb[..., ::-1], np.full(rgb.shape[:2], 7, np.uint8))),
              "mono8": cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]}[encoding]
    h, w, c = pixels.shape
    rows = np.zeros((h, w * c + pad), np.uint8)
    rows[:, :w * c] = pixels.reshape(h, w * c)
    rows[:, w * c:] = 0xAB                                           # garbage in the padding
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=is_bigendian, step=w * c + pad)
    msg.data = rows.tobytes()
    return msg


def expected_rgb(rgb, encoding):
    if encoding == "mono8":
        return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return rgb


# ------------------------------------------------------------------------------------------
# Raw images
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
@pytest.mark.parametrize("pad", [0, 5, 64])
def test_image_encodings_and_padded_step_convert_exactly(encoding, pad):
    msg = encode(RGB, encoding, pad)
    # Through the wire, so data is what a subscriber gets (array('B')).
    msg = deserialize_message(serialize_message(msg), Image)
    out = image_msg_to_rgb(msg)
    assert out.dtype == np.uint8 and out.shape == (37, 53, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected_rgb(RGB, encoding))


def test_is_bigendian_irrelevant_for_8_bit():
    for encoding in ("rgb8", "bgr8", "mono8"):
        a = image_msg_to_rgb(encode(RGB, encoding, is_bigendian=1))
        np.testing.assert_array_equal(a, image_msg_to_rgb(encode(RGB, encoding)))


def test_conversion_does_not_alias_or_modify_message():
    msg = encode(RGB, "rgb8")
    before = bytes(msg.data)
    out = image_msg_to_rgb(msg)
    out[:] = 0
    assert bytes(msg.data) == before


def test_conversion_without_copy_is_a_read_only_view_that_cannot_alter_the_message():
    msg = encode(RGB, "rgb8")
    before = bytes(msg.data)
    view = image_msg_to_rgb(msg, copy=False)
    np.testing.assert_array_equal(view, image_msg_to_rgb(msg))
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8)) and not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[:] = 0
    assert bytes(msg.data) == before
    # Every other encoding (and padded rows) is converted into a new, writable array anyway.
    for other, pad in (("rgb8", 4), ("bgr8", 0), ("mono8", 0), ("rgba8", 0)):
        out = image_msg_to_rgb(encode(RGB, other, pad=pad), copy=False)
        np.testing.assert_array_equal(out, image_msg_to_rgb(encode(RGB, other, pad=pad)))
        assert out.flags.writeable and out.flags.c_contiguous


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1", "64FC1", "nv21", "bayer_rggb32", "nonsense"])
def test_unsupported_encoding(encoding):
    msg = encode(RGB, "rgb8")
    msg.encoding = encoding
    with pytest.raises(ImageConversionError, match="unsupported encoding") as err:
        image_msg_to_rgb(msg)
    assert err.value.reason == "encoding" and isinstance(err.value, ValueError)


@pytest.mark.parametrize("mutate, reason", [
    (lambda m: setattr(m, "step", m.width * 3 - 1), "step"),
    (lambda m: setattr(m, "step", 0), "step"),
    (lambda m: setattr(m, "data", bytes(m.data)[:-1]), "truncated"),
    (lambda m: setattr(m, "data", b""), "truncated"),
    (lambda m: setattr(m, "height", m.height + 1), "truncated"),
    (lambda m: setattr(m, "data", bytes(m.data) + b"\0" * 10), "oversized"),
    (lambda m: setattr(m, "width", 0), "empty"),
    (lambda m: setattr(m, "height", 0), "empty"),
])
def test_malformed_images_raise_with_reason(mutate, reason):
    msg = encode(RGB, "rgb8", pad=4)
    mutate(msg)
    with pytest.raises(ImageConversionError) as err:
        image_msg_to_rgb(msg)
    assert err.value.reason == reason and reason in REASONS


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8"])
def test_rgb_to_image_msg_round_trip(encoding):
    h = Header(frame_id="cam")
    h.stamp.sec = 3
    msg = rgb_to_image_msg(RGB, h, encoding=encoding)
    assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (53, 37, encoding, "cam")
    assert msg.step * msg.height == len(msg.data)
    back = image_msg_to_rgb(deserialize_message(serialize_message(msg), Image))
    np.testing.assert_array_equal(back, expected_rgb(RGB, encoding))
    with pytest.raises(ValueError):
        rgb_to_image_msg(RGB.astype(np.float32), h)
    with pytest.raises(ValueError):
        rgb_to_image_msg(RGB, h, encoding="rgb16")


# ------------------------------------------------------------------------------------------
# Compressed images
# ------------------------------------------------------------------------------------------
def compressed(ext, rgb=RGB, fmt=None):
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return CompressedImage(format=fmt or ext[1:], data=buf.tobytes())


def test_png_decodes_exactly_and_jpeg_closely():
    np.testing.assert_array_equal(compressed_msg_to_rgb(compressed(".png")), RGB)
    smooth = cv2.GaussianBlur(RGB, (9, 9), 3)
    out = compressed_msg_to_rgb(compressed(".jpg", smooth, fmt="rgb8; jpeg compressed bgr8"))
    assert out.shape == RGB.shape
    assert np.abs(out.astype(int) - smooth).mean() < 6            # RGB order, not BGR
    grey = compressed_msg_to_rgb(compressed(".png", np.repeat(RGB[..., :1], 3, axis=2)))
    assert grey.shape == RGB.shape


@pytest.mark.parametrize("ext, pixels", [
    (".jpg", "smooth"), (".png", "colour"), (".png", "grey"), (".png", "16bit"), (".webp", "colour"),
    (".tiff", "colour")])
@pytest.mark.parametrize("direct_rgb", [True, False])
def test_compressed_decoding_equals_bgr_decode_then_conversion(monkeypatch, ext, pixels, direct_rgb):
    """Decoding straight to RGB (OpenCV ≥ 4.10) and the BGR route of older OpenCV (apt's 4.6)
    give exactly what cv_bridge does: imdecode(IMREAD_COLOR), then BGR → RGB."""
    from pare_ros.ros import image_conversion

    if not direct_rgb:
        monkeypatch.setattr(image_conversion, "_IMREAD_RGB", None)
    elif image_conversion._IMREAD_RGB is None:
        pytest.skip("this OpenCV has no IMREAD_COLOR_RGB")
    image = {"smooth": cv2.GaussianBlur(RGB, (9, 9), 3), "colour": RGB, "grey": RGB[..., 0],
             "16bit": RGB.astype(np.uint16) * 257 + 3}[pixels]
    ok, buf = cv2.imencode(ext, image)
    assert ok
    expected = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    out = compressed_msg_to_rgb(CompressedImage(format=ext[1:], data=buf.tobytes()))
    assert out.dtype == np.uint8 and out.shape == RGB.shape
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"\xff\xd8\xff\xe0" + bytes(200), "decode"),                 # JPEG magic, garbage body
    (bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8)), "decode"),
])
def test_corrupt_compressed_images(data, reason):
    with pytest.raises(ImageConversionError) as err:
        compressed_msg_to_rgb(CompressedImage(format="jpeg", data=data))
    assert err.value.reason == reason


def test_truncated_jpeg_and_compressed_depth():
    jpeg = compressed(".jpg")
    jpeg.data = bytes(jpeg.data)[:20]
    with pytest.raises(ImageConversionError) as err:
        compressed_msg_to_rgb(jpeg)
    assert err.value.reason == "decode"
    depth = compressed(".png", fmt="16UC1; compressedDepth png")
    with pytest.raises(ImageConversionError) as err:
        compressed_msg_to_rgb(depth)
    assert err.value.reason == "encoding"


# ------------------------------------------------------------------------------------------
# CameraInfo
# ------------------------------------------------------------------------------------------
def camera_info(k=(500.0, 0, 320.0, 0, 510.0, 240.0, 0, 0, 1), p=None, width=640, height=480,
                frame="cam", sec=1, nanosec=0):
    info = CameraInfo(width=width, height=height)
    info.k = np.array(k, dtype=np.float64)
    info.p = np.array(p if p is not None else (490.0, 0, 315.0, 0, 0, 495.0, 235.0, 0, 0, 0, 1, 0),
                      dtype=np.float64)
    info.header.frame_id = frame
    info.header.stamp.sec, info.header.stamp.nanosec = sec, nanosec
    return info


def test_intrinsics_from_k_and_p():
    info = camera_info()
    assert intrinsics_from_camera_info(info) == Intrinsics(500.0, 510.0, 320.0, 240.0)
    assert intrinsics_from_camera_info(info, source="P") == Intrinsics(490.0, 495.0, 315.0, 235.0)
    with pytest.raises(ValueError, match="'K' or 'P'"):
        intrinsics_from_camera_info(info, source="D")


@pytest.mark.parametrize("k", [np.zeros(9), (0, 0, 320, 0, 500, 240, 0, 0, 1),
                               (-500, 0, 320, 0, 500, 240, 0, 0, 1),
                               (np.nan, 0, 320, 0, 500, 240, 0, 0, 1)])
def test_zero_or_invalid_k_rejected(k):
    with pytest.raises(CameraInfoError) as err:
        intrinsics_from_camera_info(camera_info(k=k))
    assert err.value.reason == "zero_k" and isinstance(err.value, ValueError)


def test_zero_p_rejected_even_with_valid_k():
    info = camera_info(p=np.zeros(12))
    assert intrinsics_from_camera_info(info, "K").fx == 500.0
    with pytest.raises(CameraInfoError) as err:
        intrinsics_from_camera_info(info, "P")
    assert err.value.reason == "zero_k"


def test_binning_and_roi_adjust_intrinsics_and_size():
    info = camera_info()
    info.binning_x = info.binning_y = 2
    assert intrinsics_from_camera_info(info) == Intrinsics(250.0, 255.0, 160.0, 120.0)
    assert expected_image_size(info) == (320, 240)
    info = camera_info()
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 50, 200, 100
    assert intrinsics_from_camera_info(info) == Intrinsics(500.0, 510.0, 220.0, 190.0)
    check_image_size(info, 200, 100)


def test_check_image_size():
    info = camera_info()
    check_image_size(info, 640, 480)
    with pytest.raises(CameraInfoError, match="640x480") as err:
        check_image_size(info, 1280, 720)
    assert err.value.reason == "size_mismatch"
    check_image_size(camera_info(width=0, height=0), 1280, 720)        # unknown size: accept
    assert not has_distortion(info)
    info.d = [0.1, 0.0, 0.0, 0.0, 0.0]
    assert has_distortion(info)


def test_camera_info_cache_pairing():
    cache = CameraInfoCache(size=3)
    for s in range(5):
        cache.add(camera_info(sec=s, k=(500.0 + s, 0, 320, 0, 500, 240, 0, 0, 1)))
    assert len(cache) == 3
    info, mode = cache.lookup(camera_info(sec=3).header.stamp, "cam")
    assert mode == "exact" and info.k[0] == 503.0
    info, mode = cache.lookup(camera_info(sec=0).header.stamp, "cam")    # evicted → latest
    assert mode == "latest" and info.k[0] == 504.0
    assert cache.lookup(camera_info(sec=0).header.stamp, "cam", allow_latest=False) == (None, "missing")
    assert cache.lookup(camera_info(sec=3).header.stamp, "other") == (None, "missing")
    assert cache.lookup(4_000_000_000, "cam")[1] == "exact"              # int nanoseconds
    # "latest" skips infos of another size; re-sent stamps replace.
    cache.add(camera_info(sec=9, width=1280, height=720))
    info, mode = cache.lookup(10 ** 12, "cam", image_size=(640, 480))
    assert mode == "latest" and info.width == 640
    cache.add(camera_info(sec=9, k=(700.0, 0, 320, 0, 500, 240, 0, 0, 1)))
    assert cache.lookup(9_000_000_000, "cam")[0].k[0] == 700.0
    strict = CameraInfoCache(allow_latest=False)
    strict.add(camera_info(sec=1))
    assert strict.lookup(5, "cam") == (None, "missing")


# ------------------------------------------------------------------------------------------
# SmplBody / SmplBodyArray
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pare_msgs():
    return pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (colcon build)")


def fixed_array_fields(msg_file):
    """{field: length} of the float32[N]/float64[N] fields declared in a .msg file."""
    text = (REPO / "msg" / msg_file).read_text()
    return {m.group(2): int(m.group(1))
            for m in re.finditer(r"^float(?:32|64)\[(\d+)\]\s+(\w+)", text, re.MULTILINE)}


class TrackView:
    track_id, body_id, state, age, time_since_update, score = 4_000_000_000, "kqz17", 2, 3.5, 0.2, 0.77


def test_smpl_body_fields_match_msg_and_round_trip(pare_msgs):
    from test_ros_tf_markers import make_fake_body
    from pare_ros.ros.body_messages import smpl_body_msg
    from pare_ros.ros.tf_frames import body_pose

    body = make_fake_body(1)
    body.joints2d[3] = (-5.0, 100.0)                                 # outside the image
    body.joints2d[7] = (640.0, 100.0)
    body.joints2d[9] = (100.0, 480.5)
    msg = smpl_body_msg(body, track_view=TrackView(), image_size=(640, 480),
                        velocity=(0.1, -0.2, 0.3), velocity_frame="odom")
    sizes = fixed_array_fields("SmplBody.msg")
    assert set(sizes) == {"bbox", "crop", "joints_2d", "betas", "global_orient", "body_pose",
                          "transl", "cam_crop", "joints_3d", "part_visibility", "joint_confidence"}
    for field, size in sizes.items():
        assert len(getattr(msg, field)) == size, field
    back = deserialize_message(serialize_message(msg), pare_msgs.SmplBody)
    assert back == msg
    assert (back.body_id, back.track_id, back.tracking_state) == ("kqz17", 4_000_000_000, 2)
    assert back.detection_score == pytest.approx(0.77) and back.age == pytest.approx(3.5)
    np.testing.assert_allclose(back.joints_2d, body.joints2d.reshape(-1), rtol=1e-6)
    np.testing.assert_allclose(back.joints_3d, body.joints3d.reshape(-1), rtol=1e-6)
    np.testing.assert_allclose(back.global_orient, body.axis_angle[0])
    np.testing.assert_allclose(back.body_pose, body.axis_angle[1:].reshape(-1))
    np.testing.assert_allclose(back.crop, (200.0, 250.0, 400.0))
    position, quat = body_pose(body)
    np.testing.assert_allclose([back.root.position.x, back.root.position.y, back.root.position.z],
                               position)
    np.testing.assert_allclose([back.root.orientation.x, back.root.orientation.y,
                                back.root.orientation.z, back.root.orientation.w], quat)
    assert back.velocity_valid and back.velocity_frame == "odom"
    assert back.root_velocity.z == pytest.approx(0.3)
    assert len(back.rotmats) == 0 and len(back.vertices) == 0
    conf = np.asarray(back.joint_confidence)
    expected = 0.9 * body.part_visibility
    expected[[3, 7, 9]] = 0.0
    np.testing.assert_allclose(conf, expected, rtol=1e-6)


def test_smpl_body_optional_arrays_and_defaults(pare_msgs):
    from test_ros_tf_markers import make_fake_body
    from pare_ros.ros.body_messages import smpl_body_msg

    body, smooth = make_fake_body(2), make_fake_body(3)
    msg = smpl_body_msg(body, smoothed=smooth, publish_rotmats=True, publish_vertices=True,
                        joint_confidence=np.full(24, 0.5))
    back = deserialize_message(serialize_message(msg), pare_msgs.SmplBody)
    assert len(back.rotmats) == 216 and len(back.vertices) == 6890 * 3
    np.testing.assert_allclose(np.reshape(back.rotmats, (24, 3, 3)), smooth.rotmats, rtol=1e-6)
    np.testing.assert_allclose(np.reshape(back.vertices, (6890, 3)), smooth.vertices, rtol=1e-6)
    np.testing.assert_allclose(back.transl, smooth.transl)          # 3D from `smoothed`
    np.testing.assert_allclose(back.joints_2d, body.joints2d.reshape(-1))   # 2D from `body`
    assert back.tracking_state == pare_msgs.SmplBody.TRACK_CONFIRMED and back.body_id == ""
    assert not back.velocity_valid and np.allclose(back.joint_confidence, 0.5)
    with pytest.raises(ValueError, match="24"):
        smpl_body_msg(body, joint_confidence=np.ones(23))


def test_smpl_body_array_round_trip(pare_msgs):
    from test_ros_tf_markers import make_fake_body
    from pare_ros.ros.body_messages import smpl_body_array_msg, smpl_body_msg

    h = Header(frame_id="cam_optical")
    h.stamp.sec, h.stamp.nanosec = 100, 5
    bodies = [smpl_body_msg(make_fake_body(i)) for i in range(2)]
    msg = smpl_body_array_msg(h, bodies, (640, 480), Intrinsics(500, 510, 320, 240), "neutral",
                              "pare-hrnet_w32/onnxruntime-fp32", 0.125, 3)
    back = deserialize_message(serialize_message(msg), pare_msgs.SmplBodyArray)
    assert back == msg and len(back.bodies) == 2
    assert fixed_array_fields("SmplBodyArray.msg") == {"intrinsics": 4}
    assert list(back.intrinsics) == [500, 510, 320, 240] and back.frames_skipped == 3
    assert (back.header.stamp.sec, back.header.frame_id) == (100, "cam_optical")
    empty = smpl_body_array_msg(h, [], (640, 480), (1, 1, 0, 0), "neutral", "x", 0.0, 0)
    assert len(deserialize_message(serialize_message(empty), pare_msgs.SmplBodyArray).bodies) == 0


def test_builders_work_with_field_checks_enabled(pare_msgs):
    """Humble always runs the generated field checks; Kilted only with this variable."""
    code = (
        "import numpy as np, sys\n"
        "sys.path.insert(0, 'test')\n"
        "from test_ros_tf_markers import make_fake_body, header\n"
        "from pare_ros.ros import body_messages, markers, tf_frames, stats, image_conversion\n"
        "b = make_fake_body(0)\n"
        "faces = np.random.default_rng(0).integers(0, 6890, (13776, 3))\n"
        "m = body_messages.smpl_body_msg(b, publish_rotmats=True, publish_vertices=True)\n"
        "body_messages.smpl_body_array_msg(header(), [m], (640, 480), (1, 1, 0, 0), 'n', 'e', 0.0, 0)\n"
        "tf_frames.body_transforms(b, 'x', header())\n"
        "markers.body_markers(b, 1, header(), faces, color_mode='visibility',\n"
        "                     vertex_parts=np.zeros(6890, int))\n"
        "image_conversion.rgb_to_image_msg(np.zeros((4, 5, 3), np.uint8), header())\n"
        "stats.diagnostic_status('n', 'hw', 1, 'msg', {'a': 1.5})\n"
        "print('ok')\n")
    env = dict(os.environ, ROS_PYTHON_CHECK_FIELDS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


# ------------------------------------------------------------------------------------------
# Statistics and diagnostics
# ------------------------------------------------------------------------------------------
def test_latency_percentiles_and_window():
    tracker = stats.LatencyTracker(window=100)
    assert tracker.percentiles("pare") is None
    for v in range(1, 101):
        tracker.add("pare", v / 1000)
    p50, p95 = tracker.percentiles("pare")
    assert p50 == pytest.approx(0.0505) and p95 == pytest.approx(0.09505)
    for _ in range(100):
        tracker.add("pare", 1.0)                                    # old samples roll out
    assert tracker.percentiles("pare") == (1.0, 1.0)
    tracker.add_many({"detect": 0.01, "smpl": 0.002})
    summary = tracker.summary()
    assert set(summary) == {"pare", "detect", "smpl"} and summary["smpl"]["n"] == 1
    assert summary["pare"]["max"] == 1.0


def test_rate_tracker_with_injected_time():
    rate = stats.RateTracker(window=2.0)
    assert rate.rate(now=0.0) == 0.0 and rate.since_last(now=0.0) is None
    for i in range(20):                                             # 10 Hz for 2 s
        rate.tick(now=10.0 + i * 0.1)
    assert rate.rate(now=11.95) == pytest.approx(10.0)
    assert rate.rate(now=12.95) == pytest.approx(5.0)               # half the window is old
    assert rate.rate(now=20.0) == 0.0
    assert rate.since_last(now=12.4) == pytest.approx(0.5)


def test_counters_are_thread_safe():
    counters = stats.Counters("encoding", "step")
    assert counters.snapshot() == {"encoding": 0, "step": 0}

    def work():
        for _ in range(10_000):
            counters.increment("encoding")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)             # switch threads often so a missing lock shows up
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert counters.get("encoding") == 40_000
    # Deterministic check that increments take the lock (the GIL hides most races).
    done = threading.Event()
    with counters._lock:
        worker = threading.Thread(target=lambda: (counters.increment("step"), done.set()))
        worker.start()
        assert not done.wait(0.2)
    worker.join(5)
    assert done.is_set() and counters.get("step") == 1
    counters.increment("stale", 3)
    assert counters.take("stale") == 3 and counters.get("stale") == 0


def test_diagnostic_status():
    from diagnostic_msgs.msg import DiagnosticStatus

    status = stats.diagnostic_status("pare_ros/node/input", "gpu0", stats.WARN, "slow",
                                     {"rate": 9.87654321, "ok": True, "count": 3, "topic": "/img"})
    assert status.level == DiagnosticStatus.WARN
    assert (status.name, status.hardware_id, status.message) == ("pare_ros/node/input", "gpu0", "slow")
    assert {kv.key: kv.value for kv in status.values} == {
        "rate": "9.87654", "ok": "true", "count": "3", "topic": "/img"}
    assert stats.diagnostic_status("n", "h", DiagnosticStatus.ERROR, "m", {}).level == DiagnosticStatus.ERROR
    back = deserialize_message(serialize_message(status), DiagnosticStatus)
    assert back == status
    with pytest.raises(ValueError):
        stats.diagnostic_status("n", "h", 7, "m", {})


# ----------------------------------------------------------------------------- ~/body_points


@pytest.mark.parametrize("stride", [1, 3])
def test_body_points_cloud_round_trip(stride):
    from sensor_msgs.msg import PointCloud2

    from pare_ros.ros.body_points import body_points_msg, points_from_msg

    rng = np.random.default_rng(stride)
    people = [(7, rng.normal(size=(6890, 3))), (12, rng.normal(size=(6890, 3)) + 2.0)]
    header = Header(frame_id="cam_optical")
    header.stamp.sec, header.stamp.nanosec = 42, 5
    msg = deserialize_message(serialize_message(body_points_msg(header, people, stride=stride)), PointCloud2)
    assert msg.header.frame_id == "cam_optical" and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (42, 5)
    per_person = len(range(0, 6890, stride))
    assert (msg.height, msg.width, msg.point_step) == (1, 2 * per_person, 16)
    assert msg.row_step == 16 * msg.width and msg.is_dense and not msg.is_bigendian
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [
        ("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("track_id", 12, 6)]   # FLOAT32 = 7, UINT32 = 6
    xyz, ids = points_from_msg(msg)
    expected = np.concatenate([v[::stride] for _, v in people]).astype(np.float32)
    np.testing.assert_array_equal(xyz, expected)
    np.testing.assert_array_equal(ids, [7] * per_person + [12] * per_person)


def test_body_points_empty_and_invalid():
    from sensor_msgs.msg import PointCloud2

    from pare_ros.ros.body_points import body_points_msg, points_from_msg

    empty = body_points_msg(Header(), [])
    assert empty.width == 0 and len(empty.data) == 0
    assert points_from_msg(empty)[0].shape == (0, 3)
    with pytest.raises(ValueError, match="stride"):
        body_points_msg(Header(), [(1, np.zeros((5, 3)))], stride=0)
    with pytest.raises(ValueError, match="not a pare_ros body-points cloud"):
        points_from_msg(PointCloud2(point_step=12))
