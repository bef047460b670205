"""The Fast DDS profile for camera-sized messages: when it is applied, and that Fast DDS
really takes it (a participant created with it maps a 16 MiB shared-memory segment)."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pare_ros.ros import dds_profile
from pare_ros.ros.dds_profile import PROFILE_VARIABLES, profile_path, use_large_image_profile

NS = "{http://www.eprosima.com}"


def test_profile_is_applied_only_where_nobody_chose_otherwise(monkeypatch):
    env = {}
    assert use_large_image_profile(env) == profile_path()
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(profile_path())
    for name in PROFILE_VARIABLES:              # the user's own profile wins
        env = {name: "/etc/my_profile.xml"}
        assert use_large_image_profile(env) is None and env == {name: "/etc/my_profile.xml"}
    env = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert use_large_image_profile(env) is None and "FASTDDS_DEFAULT_PROFILES_FILE" not in env
    monkeypatch.setattr(dds_profile, "MIN_FREE_SHM", 1 << 62)        # a small /dev/shm
    env = {}
    assert use_large_image_profile(env) is None and env == {}
    assert use_large_image_profile({}, shm="/no/such/dir") is None


def test_profile_declares_a_large_shared_memory_segment_used_by_default():
    root = ET.parse(profile_path()).getroot()
    shm = [d for d in root.iter(f"{NS}transport_descriptor") if d.findtext(f"{NS}type") == "SHM"]
    assert len(shm) == 1 and int(shm[0].findtext(f"{NS}segment_size")) >= 8 << 20
    participant = root.find(f"{NS}profiles/{NS}participant")
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iter(f"{NS}transport_id")]
    assert shm[0].findtext(f"{NS}transport_id") in used


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_fast_dds_maps_the_large_segment():
    pytest.importorskip("rclpy")
    if os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        pytest.skip("another RMW is selected")
    script = ("import glob, os, rclpy\n"
              "before = set(glob.glob('/dev/shm/fastdds_*'))\n"
              "rclpy.init(); node = rclpy.create_node('dds_profile_probe')\n"
              "new = set(glob.glob('/dev/shm/fastdds_*')) - before\n"
              "print(max((os.path.getsize(p) for p in new), default=0))\n"
              "node.destroy_node(); rclpy.shutdown()\n")
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env.update(FASTDDS_DEFAULT_PROFILES_FILE=str(profile_path()), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) >= 16 << 20, out.stdout + out.stderr
