"""`pip install .` gives the ROS-free library, the training package and the model manifest."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_ros_free_core(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("pare_ros-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("pare_ros/network/checkpoint.py", "pare_ros/body_model/body_model.py",
                     "pare_ros/estimator.py", "pare_ros/cli.py", "pare_training/__init__.py"):
        assert required in names, required
    assert any(n.endswith("share/pare_ros/model/manifest.yaml") for n in names)
    assert not any(n.startswith("pare_ros/ros/") for n in names), "the ROS layer is not in the library"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "pare-ros = pare_ros.cli:main" in text
