"""`pare-ros infer` end to end in a separate process, as users run it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args, tmp_path, model_dir):
    env = dict(os.environ, PARE_ROS_MODEL_DIR=str(model_dir), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "pare_ros", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "out"
    proc = _run(["infer", "skimage:astronaut", "--allow-untrained", "--out", str(out),
                 "--boxes", "20,0,480,512"], tmp, tmp / "empty_model_dir")
    return proc, out


def test_demo_writes_consistent_json_npz_and_overlay(demo_run):
    proc, out = demo_run
    assert proc.returncode == 0, proc.stderr
    assert "RESULTS ARE MEANINGLESS" in proc.stderr
    data = json.loads((out / "results.json").read_text())
    overlay = cv2.imread(str(out / "overlay.png"))
    assert overlay.shape == (512, 512, 3)
    assert data["image_size"] == {"width": 512, "height": 512}
    assert data["meta"]["meaningless"] is True and data["meta"]["missing_files"]
    (person,) = data["people"]
    k = data["intrinsics"]
    joints3d, joints2d = np.array(person["joints3d"]), np.array(person["joints2d"])
    # The 2D keypoints are the 3D joints seen through the reported intrinsics ...
    proj = np.c_[k["fx"] * joints3d[:, 0] / joints3d[:, 2] + k["cx"],
                 k["fy"] * joints3d[:, 1] / joints3d[:, 2] + k["cy"]]
    np.testing.assert_allclose(proj, joints2d, atol=1e-2)
    # ... and lie inside the image for the person in frame.
    keypoints2d = np.array(person["keypoints2d"])
    for points in (joints2d, keypoints2d):
        assert (points >= 0).all() and (points[:, 0] < 512).all() and (points[:, 1] < 512).all()
    arrays = np.load(out / "results.npz")
    assert arrays["vertices"].shape == (1, 6890, 3)
    assert arrays["part_attention"].shape == (1, 24, 56, 56)
    # The overlay differs from the photo where the body was drawn.
    import skimage.data

    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    changed = np.abs(overlay.astype(int) - photo.astype(int)).sum(2) > 30
    u, v = np.clip(joints2d.astype(int), 0, 511).T
    assert changed[v, u].mean() > 0.5


def test_missing_files_without_allow_untrained_fail_clearly(tmp_path):
    proc = _run(["infer", "skimage:astronaut", "--out", str(tmp_path / "o")], tmp_path,
                tmp_path / "model")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    expected = tmp_path / "model" / "checkpoints" / "pare_w_3dpw_checkpoint.ckpt"
    assert str(expected) in proc.stderr
    assert "github.com/mkocabas/PARE" in proc.stderr


def test_bad_image_fails_clearly(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    proc = _run(["infer", str(bad), "--allow-untrained", "--out", str(tmp_path / "o")], tmp_path,
                tmp_path / "model")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "bad.jpg" in proc.stderr
