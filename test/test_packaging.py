"""`pip install .` gives the ROS-free library, the training package and the model manifest."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

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


# ------------------------------------------------------------------ the model directory
def test_model_directory_lookup_order(tmp_path, monkeypatch):
    from pare_ros import model_files

    monkeypatch.delenv(model_files.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert model_files.default_model_dir() == tmp_path / "data" / "pare_ros" / "model"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert model_files.default_model_dir() == Path.home() / ".local" / "share" / "pare_ros" / "model"
    monkeypatch.setenv(model_files.ENV_VAR, str(tmp_path / "env"))
    assert model_files.default_model_dir() == tmp_path / "env"
    assert model_files.model_root(tmp_path / "explicit") == tmp_path / "explicit"
    # The manifest and its README are found in a checkout and in an install alike.
    assert model_files.MANIFEST_PATH.is_file() and model_files.README_PATH.is_file()


def test_missing_file_error_names_the_path_and_the_real_parameter(tmp_path, monkeypatch):
    from pare_ros import model_files
    from pare_ros.cli import build_parser

    monkeypatch.delenv(model_files.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(model_files.MissingModelFileError) as err:
        model_files.require("pare_w_3dpw_checkpoint")
    text = str(err.value)
    expected = tmp_path / "data" / "pare_ros" / "model" / "checkpoints" / "pare_w_3dpw_checkpoint.ckpt"
    assert f"expected {expected}" in text
    assert "default per-user directory" in text
    for knob in ("model.dir", "--model-dir", "PARE_ROS_MODEL_DIR", str(model_files.README_PATH)):
        assert knob in text, knob
    # ... and every knob it names exists: the CLI option and the node parameter.
    infer = build_parser()._subparsers._group_actions[0].choices["infer"]
    assert "--model-dir" in infer._option_string_actions
    params_source = (Path(__import__("pare_ros").ros.__path__[0]) / "parameters.py").read_text()
    assert 'Param("model.dir"' in params_source and 'Param("smpl.model_dir"' in params_source
    monkeypatch.setenv(model_files.ENV_VAR, str(tmp_path / "env"))
    with pytest.raises(model_files.MissingModelFileError, match=r"\(from \$PARE_ROS_MODEL_DIR\)"):
        model_files.require("smpl_neutral")


# ------------------------------------------------------------------ package.xml, CMake, requirements
ROS_MODULE = re.compile(r"^(rclpy|ament_index_python|tf2_ros|launch|launch_ros|message_filters|"
                        r"cv_bridge|image_transport|rosidl_runtime_py|\w+_(msgs|srvs|interfaces))$")
ROSDEP_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "cv2": "python3-opencv",
               "yaml": "python3-yaml", "PIL": "python3-pil"}
# Imported only by demo / test-harness code paths, never by the node: not run-time dependencies.
DEMO_AND_TEST_ONLY = {"skimage", "motmetrics", "matplotlib", "tensorboard", "tqdm"}
# No rosdep key installs a usable version: pip, as docs/install.md says (names as pip knows them).
PIP_ONLY = {"torch": "torch", "smplx": "smplx", "onnxruntime": "onnxruntime", "onnx": "onnx",
            "rosbags": "rosbags", "threadpoolctl": "threadpoolctl", "tensorrt": "tensorrt", "modelopt": "nvidia-modelopt",
            "chumpy": None, "pycuda": None}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_package_xml_declares_every_run_time_dependency():
    root = ET.parse(REPO / "package.xml").getroot()
    declared = {e.text for e in root if e.tag in ("depend", "exec_depend")}
    sources = [p for p in (REPO / "pare_ros").rglob("*.py")] + list((REPO / "launch").glob("*.py"))
    sources += [p for p in (REPO / "scripts").iterdir() if p.is_file() and p.read_text(
        errors="replace").startswith("#!/usr/bin/env python")]
    missing, unknown = set(), set()
    for path in sources:
        for module in _imports(path):
            if module in sys.stdlib_module_names or module in ("pare_ros", "__future__"):
                continue
            if ROS_MODULE.match(module):
                if module not in declared:
                    missing.add(f"{module} ({path.relative_to(REPO)})")
            elif module in ROSDEP_KEYS:
                if ROSDEP_KEYS[module] not in declared:
                    missing.add(f"{ROSDEP_KEYS[module]} ({path.relative_to(REPO)})")
            elif module not in PIP_ONLY and module not in DEMO_AND_TEST_ONLY:
                unknown.add(f"{module} ({path.relative_to(REPO)})")
    assert not missing, f"package.xml lacks: {sorted(missing)}"
    assert not unknown, f"neither a rosdep key nor a documented pip dependency: {sorted(unknown)}"
    assert "rviz2" in declared                    # pare.launch.py use_rviz:=true
    tests = {e.text for e in root if e.tag == "test_depend"}
    assert {"ament_cmake_pytest", "python3-pytest"} <= tests


def test_pip_only_dependencies_are_documented_for_robots():
    install = (REPO / "docs" / "install.md").read_text(encoding="utf-8")
    requirements = (REPO / "requirements.txt").read_text(encoding="utf-8")
    for name in ("torch", "smplx", "onnxruntime", "rosbags"):
        assert name in install and re.search(rf"^{name}==", requirements, re.M), name
    assert "--system-site-packages" in install and "numpy" in install
    assert "FASTRTPS_DEFAULT_PROFILES_FILE" in install and "FASTDDS_DEFAULT_PROFILES_FILE" in install
    assert "~/.local/share/pare_ros/model" in install
    assert "~/.local/share/pare_ros/model" in (REPO / "model" / "README.md").read_text(encoding="utf-8")


def test_cmake_uses_the_public_api_installs_no_model_files_and_registers_pytest():
    cmake = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "ament_get_python_install_dir(PYTHON_INSTALL_DIR)" in cmake
    assert "_ament_cmake_python_get_python_install_dir" not in cmake
    assert "ament_add_pytest_test(" in cmake and "if(BUILD_TESTING)" in cmake
    assert "install(FILES model/manifest.yaml model/README.md" in cmake
    assert not re.search(r"install\(DIRECTORY[^)]*\bmodel\b", cmake)


def test_requirement_files_cite_files_that_exist_and_both_distros_match():
    for name in ("requirements.txt", "requirements-ros.txt", "requirements-ros-jazzy.txt"):
        text = (REPO / name).read_text(encoding="utf-8")
        for cited in re.findall(r"\b((?:docs|scripts)/[\w./-]+\.(?:md|sh))", text):
            assert (REPO / cited).is_file(), f"{name} cites {cited}, which does not exist"

    def ros_packages(name):
        lines = (REPO / name).read_text(encoding="utf-8").splitlines()
        return {re.sub(r"^ros-(jazzy-)?", "", l.strip()) for l in lines if l.startswith("ros-")}

    kilted, jazzy = ros_packages("requirements-ros.txt"), ros_packages("requirements-ros-jazzy.txt")
    # Kilted split ament_cmake_ros_core out of ament_cmake_ros; Jazzy's ament_cmake_ros needs
    # gmock/gtest at configure time and its wheel metadata omits them; the bootstrapper wheel
    # has one name for all distros.
    assert kilted - jazzy == {"ament-cmake-ros-core"}, kilted - jazzy
    assert jazzy - kilted == {"ament-cmake-gmock", "ament-cmake-gtest", "gmock-vendor",
                              "gtest-vendor", "wheels-bootstrapper"}, jazzy - kilted
