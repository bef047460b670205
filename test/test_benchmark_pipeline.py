"""scripts/benchmark_pipeline.py: its frames decode to the size and encoding asked for, its people
scale with the image and stay inside it, and a whole run over other sizes and encodings publishes
every person. No speed is asserted (figures live in docs/benchmarks.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")

from script_modules import REPO, load_script  # noqa: E402

SCRIPT = REPO / "scripts" / "benchmark_pipeline.py"


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark_pipeline")


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "yuv422_yuy2", "bayer_rggb8", "mono8", "jpeg"])
def test_frames_decode_to_the_asked_size(bench, encoding):
    from pare_ros.ros.image_conversion import compressed_msg_to_rgb, image_msg_to_rgb

    width, height = 320, 240
    message, info, stamp = bench.frame_message(bench.frame_payload(width, height, encoding, seed=1),
                                               width, height, index=3)
    assert (info.width, info.height) == (width, height)
    assert info.k[2] == width / 2 and info.k[5] == height / 2
    assert stamp == pytest.approx(1.0 + 3 / 30, abs=1e-6)
    assert hasattr(message, "format") == (encoding == "jpeg")
    rgb = compressed_msg_to_rgb(message) if encoding == "jpeg" else image_msg_to_rgb(message)
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8


def test_people_scale_with_the_image_height_and_stay_inside(bench):
    base = bench.scene_boxes(8, 640, 480)
    np.testing.assert_allclose(base, bench.boxes_for(8))        # the default frame is unchanged
    for width, height in [(1280, 720), (1920, 1080), (640, 360), (320, 240)]:
        boxes = bench.scene_boxes(8, width, height)
        heights = boxes[:, 3] - boxes[:, 1]
        np.testing.assert_allclose(heights / height, (base[:, 3] - base[:, 1]) / 480, rtol=1e-12)
        assert (boxes[:, [0, 1]] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()


@pytest.mark.parametrize("text", ["640", "0x480", "641x480", "axb"])
def test_bad_image_sizes_are_refused(bench, text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        bench.image_size(text)


@pytest.mark.parametrize("size,encoding", [("1280x720", "yuv422_yuy2"), ("960x540", "jpeg")])
def test_a_run_at_another_size_and_encoding_publishes_everyone(tmp_path, size, encoding):
    out = tmp_path / "pipeline.json"
    # In a subprocess: the script sets the process's thread pools as the node does.
    run = subprocess.run([sys.executable, str(SCRIPT), "--frames", "3", "--warmup", "1", "--people", "1", "4",
                          "--subscribers", "none", "markers+points", "--image-size", size, "--encoding", encoding,
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["image_size"] == [int(v) for v in size.split("x")] and report["encoding"] == encoding
    assert [(c["people"], c["subscribers"]) for c in report["cases"]] == [
        (1, "none"), (4, "none"), (1, "markers+points"), (4, "markers+points")]
    assert all(c["image"] == f"{size} {encoding}" and c["end_to_end"][0] > 0 for c in report["cases"])
