"""The Fast DDS profile for camera-sized messages: when it is applied, and that Fast DDS
really takes it (a participant created with it maps a 16 MiB shared-memory segment)."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pare_ros.ros import dds_profile
from pare_ros.ros.dds_profile import (PROFILE_VARIABLES, fast_dds_variables, profile_path,
                                     use_large_image_profile)

NS = "{http://www.eprosima.com}"


def test_profile_is_applied_only_where_nobody_chose_otherwise(monkeypatch):
    env = {}
    assert use_large_image_profile(env) == profile_path()
    assert set(env) == set(fast_dds_variables()) and set(env.values()) == {str(profile_path())}
    for name in PROFILE_VARIABLES:              # the user's own profile wins
        env = {name: "/etc/my_profile.xml"}
        assert use_large_image_profile(env) is None and env == {name: "/etc/my_profile.xml"}
    env = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert use_large_image_profile(env) is None and "FASTDDS_DEFAULT_PROFILES_FILE" not in env
    monkeypatch.setattr(dds_profile, "MIN_FREE_SHM", 1 << 62)        # a small /dev/shm
    env = {}
    assert use_large_image_profile(env) is None and env == {}
    assert use_large_image_profile({}, shm="/no/such/dir") is None


def test_the_variable_of_the_installed_fast_dds_is_chosen(tmp_path, monkeypatch):
    # Fast DDS 2.x (Jazzy) reads only FASTRTPS_..., 3.x (Kilted) FASTDDS_... (and warns on the
    # old name): a profile under the wrong name is silently ignored.
    monkeypatch.setattr(dds_profile.sys, "prefix", str(tmp_path / "nothing"))
    for lib, expected in (("libfastrtps.so.2.14", ("FASTRTPS_DEFAULT_PROFILES_FILE",)),
                          ("libfastdds.so.3.2", ("FASTDDS_DEFAULT_PROFILES_FILE",))):
        prefix = tmp_path / lib
        (prefix / "lib").mkdir(parents=True)
        (prefix / "lib" / lib).touch()
        assert fast_dds_variables({"AMENT_PREFIX_PATH": f"/no/such:{prefix}"}) == expected
        env = {"AMENT_PREFIX_PATH": str(prefix)}
        assert use_large_image_profile(env) == profile_path()
        assert {k: v for k, v in env.items() if k != "AMENT_PREFIX_PATH"} == {expected[0]: str(profile_path())}
    assert fast_dds_variables({}) == PROFILE_VARIABLES            # unknown: both


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
              "before = set(glob.glob('/dev/shm/fast*'))\n"
              "rclpy.init(); node = rclpy.create_node('dds_profile_probe')\n"
              "new = set(glob.glob('/dev/shm/fast*')) - before\n"
              "print(max((os.path.getsize(p) for p in new), default=0))\n"
              "node.destroy_node(); rclpy.shutdown()\n")
    def largest_segment(**variables):
        env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
        env.update(variables, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        return int(out.stdout.split()[-1]), out.stdout + out.stderr

    # What the demo graph, the tests and docs/install.md set: the 16 MiB segment on every distro
    # (Jazzy's Fast DDS 2.14 reads FASTRTPS_..., Kilted's Fast DDS 3 FASTDDS_...).
    chosen = {}
    assert use_large_image_profile(chosen) == profile_path()
    size, log = largest_segment(**chosen)
    assert size >= 16 << 20, log
    # (Fast DDS 2.x names its segments fastrtps_*, 3.x fastdds_*.)
    # Without the profile, Fast DDS's own segment is far smaller (so the check above can fail).
    default, log = largest_segment()
    assert 0 < default < 16 << 20, log
