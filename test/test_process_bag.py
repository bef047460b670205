"""The offline bag command: the node's pipeline over MCAP and sqlite3 bags, no live ROS graph."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from pare_ros.ros.bag_io import BagWriter, read_messages  # noqa: E402
from pare_ros.ros.param_file import ParamSource  # noqa: E402
from pare_ros.ros.process_bag import main, process_bag  # noqa: E402

FRAME = "cam_optical"


def _write_input_bag(path, storage, frames=3, bad_frame=True, distortion=None):
    rng = np.random.default_rng(0)
    stamps = []
    with BagWriter(path, storage) as bag:
        for i in range(frames):
            stamp = Time(sec=100 + i, nanosec=250_000_000)
            info = CameraInfo(width=320, height=240, k=[300.0, 0, 160.0, 0, 310.0, 120.0, 0, 0, 1.0])
            if distortion is not None:
                info.distortion_model, info.d = "plumb_bob", list(distortion)
            info.header.stamp, info.header.frame_id = stamp, FRAME
            image = Image(width=320, height=240, encoding="bgr8", step=960)
            image.data = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8).tobytes()
            image.header.stamp, image.header.frame_id = stamp, FRAME
            t = (100 + i) * 10**9 + 300_000_000
            bag.write("/cam/camera_info", info, t)
            bag.write("/cam/image", image, t + 1000)
            stamps.append(stamp)
        if bad_frame:
            broken = Image(width=320, height=240, encoding="bgr8", step=960, data=bytes(100))
            broken.header.stamp, broken.header.frame_id = Time(sec=200), FRAME
            bag.write("/cam/image", broken, 200 * 10**9)
    return stamps


PARAMS = {"model.allow_untrained": True, "detector.kind": "full_frame", "tracker.min_hits": 1}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_in_bag_out(tmp_path, storage):
    stamps = _write_input_bag(tmp_path / "in", storage)
    counts = process_bag(tmp_path / "in", tmp_path / "out", "/cam/image", "/cam/camera_info",
                         ParamSource(overrides=PARAMS), storage=storage, debug_images=True)
    assert counts["processed"] == 3 and counts["truncated"] == 1 and counts["people"] == 3
    out = list(read_messages(tmp_path / "out"))
    bodies = [m for topic, _, _, m in out if topic == "/pare_node/bodies"]
    assert [(b.header.stamp.sec, b.header.stamp.nanosec) for b in bodies] == [(s.sec, s.nanosec) for s in stamps]
    assert all(len(b.bodies) == 1 and b.header.frame_id == FRAME for b in bodies)
    assert list(bodies[0].intrinsics) == [300.0, 310.0, 160.0, 120.0]
    assert not bodies[0].bodies[0].velocity_valid and bodies[-1].bodies[0].velocity_valid
    ids = {b.bodies[0].body_id for b in bodies}
    assert len(ids) == 1, "one person tracked through the bag keeps one ID"
    tf = [m for topic, _, _, m in out if topic == "/tf"]
    assert len(tf) == 3 and all(len(m.transforms) >= 25 for m in tf)
    markers = [m for topic, _, _, m in out if topic == "/pare_node/markers"]
    assert any(len(mk.points) == 3 * 13776 for a in markers for mk in a.markers)
    debug = [m for topic, _, _, m in out if topic == "/pare_node/debug_image"]
    assert len(debug) == 3 and debug[0].width == 320


def test_distorted_camera_info_with_k_warns_once(tmp_path, caplog):
    _write_input_bag(tmp_path / "in", "mcap", frames=3, bad_frame=False, distortion=[0.1, -0.05, 0, 0, 0])
    with caplog.at_level("WARNING"):
        counts = process_bag(tmp_path / "in", tmp_path / "out", "/cam/image", "/cam/camera_info",
                             ParamSource(overrides=PARAMS))
    assert counts["processed"] == 3
    warned = [r.getMessage() for r in caplog.records if "non-zero distortion" in r.getMessage()]
    assert len(warned) == 1 and "intrinsics_source: P" in warned[0]
    caplog.clear()
    _write_input_bag(tmp_path / "in_rect", "mcap", frames=1, bad_frame=False, distortion=[0.0] * 5)
    with caplog.at_level("WARNING"):
        process_bag(tmp_path / "in_rect", tmp_path / "out_rect", "/cam/image", "/cam/camera_info",
                    ParamSource(overrides=PARAMS))
    assert not [r for r in caplog.records if "non-zero distortion" in r.getMessage()]


def test_command_line_errors(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), str(tmp_path / "o")]) == 1
    _write_input_bag(tmp_path / "in", "mcap", frames=1, bad_frame=False)
    assert main([str(tmp_path / "in"), str(tmp_path / "o2"), "--image-topic", "/cam/image",
                 "--camera-info-topic", "/cam/camera_info", "--set", "model.allow_untrained=true",
                 "--set", "detector.kind=full_frame", "--set", "tracker.min_hits=1"]) == 0
    assert main([str(tmp_path / "in"), str(tmp_path / "o3"), "--set", "no.such.param=1"]) == 1


def test_backend_parameter_selects_onnxruntime_and_refuses_missing_tensorrt(tmp_path):
    from pare_ros.assets import untrained_network
    from pare_ros.backends.onnx_export import export_onnx
    from pare_ros.ros.pipeline_factory import StartupError

    onnx_path = tmp_path / "pare.onnx"
    export_onnx(untrained_network(), onnx_path, {"checkpoint": "untrained"})
    _write_input_bag(tmp_path / "in", "mcap", frames=1, bad_frame=False)
    params = ParamSource(overrides=dict(PARAMS, backend="onnxruntime", **{"model.onnx_path": str(onnx_path)}))
    counts = process_bag(tmp_path / "in", tmp_path / "out", "/cam/image", "/cam/camera_info", params)
    assert counts["processed"] == 1 and counts["people"] == 1
    (bodies,) = [m for t, _, _, m in read_messages(tmp_path / "out") if t == "/pare_node/bodies"]
    assert bodies.estimator == "pare-hrnet_w32/onnxruntime-cpu"
    with pytest.raises(StartupError, match="tensorrt"):
        process_bag(tmp_path / "in", tmp_path / "out2", "/cam/image", "/cam/camera_info",
                    ParamSource(overrides=dict(PARAMS, backend="tensorrt")))
