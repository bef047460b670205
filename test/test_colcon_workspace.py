"""The robot route, end to end: a fresh colcon workspace with this package under src/, a plain
`colcon build` (no symlink install) against the environment's ROS 2, model files placed where
model/README.md says (the per-user directory $XDG_DATA_HOME/pare_ros/model), the *installed*
pare_node starting and finding them, and `colcon test` running the pytest suite.

Runs against whichever distro the environment holds (scripts/test.sh --distro kilted|jazzy).
`colcon test` is given a small, fast selection through PYTEST_ADDOPTS (so it does not recurse
into this test or run the whole suite a second time).
"""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")
# -k expression for `colcon test`: seconds, and these tests check the installed package itself.
COLCON_TEST_SELECTION = "test_packaging and not wheel"

pytestmark = [
    pytest.mark.skipif(os.environ.get("PARE_ROS_IN_COLCON_TEST") == "1",
                       reason="already inside the colcon test this test starts"),
    pytest.mark.skipif(shutil.which("colcon") is None, reason="colcon not installed"),
]


def _package_files():
    """What a user clones into src/: git's files (tracked, plus untracked ones not ignored, so
    uncommitted work is tested too); no build outputs, caches or model files."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                             capture_output=True, check=True, timeout=60).stdout.decode()
        files = [f for f in out.split("\0") if f and (REPO / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:                                  # not a git checkout: the tree minus outputs
        skip = re.compile(r"^(\.git|build|install|log|out)(-\w+)?(/|$)|__pycache__|\.pyc$")
        files = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if p.is_file() and not skip.search(str(p.relative_to(REPO)))]
    return [f for f in files if not f.startswith("ros_compat/")]


def _importable(module: str, env: dict) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], env=env,
                          capture_output=True, timeout=120).returncode == 0


def _ros_environment(tmp: Path) -> dict:
    """The environment's ROS 2 alone, as after `source /opt/ros/<distro>/setup.bash`: the venv's
    wheels plus, as part of that underlay, the ros_compat packages already built for it; nothing
    else of this repository (its pare_ros install, source tree) on any path."""
    underlay = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
                if p and Path(p).name != "pare_ros" and (Path(REPO) / "ros_compat" / Path(p).name).is_dir()]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COLCON", "AMENT_", "CMAKE_PREFIX", "PYTEST", "PARE_ROS_MODEL"))}
    site = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    env["PYTHONPATH"] = os.pathsep.join(f"{p}/{site}" for p in underlay)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([f"{p}/lib" for p in underlay] + [
        p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and not p.startswith(str(REPO))])
    env["AMENT_PREFIX_PATH"] = env["CMAKE_PREFIX_PATH"] = os.pathsep.join(underlay + [sys.prefix])
    if sys.prefix != sys.base_prefix:          # CMake's FindPython3 takes the venv's interpreter
        env["VIRTUAL_ENV"] = sys.prefix
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent)] + [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))])
    env.update(ROS_DOMAIN_ID=str(random.randint(100, 200)), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_LOCALHOST_ONLY="1", XDG_DATA_HOME=str(tmp / "data"), XDG_CACHE_HOME=str(tmp / "cache"),
               PYTHONDONTWRITEBYTECODE="1")
    return env


def _run(cmd, cwd, env, timeout, log: Path):
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{text[-6000:]}"
    return text


def test_fresh_workspace_build_node_start_and_colcon_test(tmp_path):
    env = _ros_environment(tmp_path)
    if not _importable("rclpy", env):
        pytest.skip("no ROS 2 (rclpy) in this environment")
    ws = tmp_path / "ws"
    src = ws / "src" / "pare_ros"
    for rel in _package_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    # A robot's ROS install provides tf2_msgs, people_msgs, ... The PyPI wheels lack them, so
    # the ros_compat stand-ins that bootstrap.sh built stay on the paths as part of the underlay
    # (_ros_environment); any declared one still missing is built in the workspace, as a user
    # would clone it next to pare_ros.
    declared = {e.text for e in ET.parse(REPO / "package.xml").getroot()
                if e.tag.endswith("depend")}
    for compat in sorted((REPO / "ros_compat").glob("*/package.xml")):
        name = ET.parse(compat).getroot().findtext("name")
        if name in declared and not _importable(name, env):
            shutil.copytree(compat.parent, ws / "src" / name, ignore=IGNORE)

    # Model files where model/README.md says: the per-user model directory.
    from pare_ros.body_model.synthetic import write_synthetic_model_dir
    model_dir = tmp_path / "data" / "pare_ros" / "model"
    write_synthetic_model_dir(model_dir, genders=("neutral",), formats=("npz",))

    start = time.monotonic()
    _run(["colcon", "build", "--event-handlers", "console_direct-"], ws, env, 900, tmp_path / "build.log")
    build_s = time.monotonic() - start
    install = ws / "install"
    assert (install / "pare_ros" / "share" / "pare_ros" / "model" / "manifest.yaml").is_file()
    # Only the manifest and README are installed from model/, never model files.
    installed_model = sorted(p.name for p in (install / "pare_ros" / "share" / "pare_ros" / "model").iterdir())
    assert installed_model == ["README.md", "manifest.yaml"], installed_model
    node_exe = install / "pare_ros" / "lib" / "pare_ros" / "pare_node"
    assert node_exe.is_file() and os.access(node_exe, os.X_OK)
    assert not (install / "pare_ros" / "lib" / "pare_ros" / "pare_node").is_symlink()

    # The installed node (what `ros2 run pare_ros pare_node` starts), from the workspace's
    # setup script; untrained weights allowed, the body model must come from model_dir.
    node_log = tmp_path / "node.log"
    with open(node_log, "w") as out:
        node = subprocess.Popen(
            f"source {install}/setup.bash && exec {node_exe} --ros-args -p model.allow_untrained:=true",
            shell=True, executable="/bin/bash", cwd=tmp_path, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and node.poll() is None:
            if "listening on" in node_log.read_text(errors="replace"):
                break
            time.sleep(0.5)
        text = node_log.read_text(errors="replace")
        assert "listening on" in text, f"node did not start (exit {node.poll()}):\n{text[-6000:]}"
    finally:
        if node.poll() is None:
            os.killpg(node.pid, 2)
            try:
                node.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, 9)
    assert f"body model: {model_dir}" in text, text[-4000:]
    assert f"model directory: {model_dir}" in text, text[-4000:]
    # The installed copy ran (not this checkout): its modules come from the install space.
    probe = subprocess.run(f"source {install}/setup.bash && python -c 'import pare_ros.ros.node as n; print(n.__file__)'",
                           shell=True, executable="/bin/bash", cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip().startswith(str(install)), probe.stdout + probe.stderr

    # colcon test runs pytest over test/ (a quick selection, see the module docstring).
    test_env = dict(env, PYTEST_ADDOPTS=f"-q -k '{COLCON_TEST_SELECTION}'", PARE_ROS_IN_COLCON_TEST="1")
    start = time.monotonic()
    _run(["colcon", "test", "--packages-select", "pare_ros", "--event-handlers", "console_direct-"],
         ws, test_env, 600, tmp_path / "test.log")
    test_s = time.monotonic() - start
    results = ws / "build" / "pare_ros" / "test_results" / "pare_ros" / "pare_ros_pytest.xunit.xml"
    assert results.is_file(), f"colcon test wrote no pytest results ({results})"
    suite = ET.parse(results).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    tests, failures, errors = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors"))
    assert tests >= 3 and failures == 0 and errors == 0, ET.tostring(suite)[:4000]
    summary = _run(["colcon", "test-result", "--test-result-base", "build"], ws, env, 120,
                   tmp_path / "test-result.log")
    assert re.search(r"\b0 errors, 0 failures\b", summary), summary
    print(f"colcon build {build_s:.0f} s, colcon test {test_s:.0f} s ({tests} tests)")
