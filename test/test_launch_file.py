"""launch/pare.launch.py and rviz/pare.rviz, checked statically.

launch and launch_ros are not on PyPI, so the launch file is imported here with small stand-in
modules that record what it builds (the Node actions' arguments); test_ros_node.py checks it with
the real launch_ros where a ROS 2 install provides it.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).parents[1]


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


@pytest.fixture
def launch_module(monkeypatch):
    """The launch file imported against stand-in launch / launch_ros / ament_index modules."""
    modules = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.substitutions", "launch.conditions", "launch_ros",
        "launch_ros.actions", "ament_index_python", "ament_index_python.packages")}
    modules["launch"].LaunchDescription = lambda entities: list(entities)
    modules["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorded,), {})
    modules["launch.actions"].OpaqueFunction = type("OpaqueFunction", (_Recorded,), {})
    modules["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    modules["launch_ros.actions"].Node = type("Node", (_Recorded,), {})
    modules["ament_index_python.packages"].get_package_share_directory = lambda package: f"/share/{package}"
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("pare_launch", REPO / "launch" / "pare.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _launch(module, **arguments):
    """Node actions (kwargs) the launch file creates for these launch arguments."""
    entities = module.generate_launch_description()
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    unknown = set(arguments) - set(declared)
    assert not unknown, f"not declared: {unknown}"
    context = dict(declared, **arguments)
    (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    return declared, [node.kwargs for node in opaque.kwargs["function"](context)]


def test_defaults_start_the_node_alone_with_the_parameter_file(launch_module):
    declared, nodes = _launch(launch_module)
    (node,) = nodes
    assert (node["package"], node["executable"], node["name"], node["namespace"]) == \
        ("pare_ros", "pare_node", "pare_node", "")
    assert node["parameters"] == ["/share/pare_ros/config/pare.yaml", {"use_sim_time": False, "autostart": True}]
    # No image/compressed remap: the node derives it from the resolved image topic.
    assert node["remappings"] == [("image", "image"), ("camera_info", "camera_info")]
    assert node["ros_arguments"] == ["--log-level", "info"]


def test_user_settings_are_launch_arguments(launch_module):
    _, (node,) = _launch(launch_module, image="/cam/image_raw", image_transport="compressed",
                         backend="onnxruntime", device="cuda:1", detector="yolo", model_dir="/models",
                         publish_debug_image="true", log_level="debug", autostart="false")
    assert node["parameters"][1] == {
        "use_sim_time": False, "autostart": False, "image_transport": "compressed", "backend": "onnxruntime",
        "device": "cuda:1", "detector.kind": "yolo", "model.dir": "/models", "publish_debug_image": True}
    assert node["remappings"][0] == ("image", "/cam/image_raw")
    assert node["ros_arguments"] == ["--log-level", "debug"]


def test_rviz_follows_the_node_into_its_namespace(launch_module):
    _, (node, rviz) = _launch(launch_module, namespace="front", use_rviz="true")
    assert node["namespace"] == "/front"
    assert rviz["executable"] == "rviz2"
    assert dict(rviz["remappings"]) == {
        "/pare_node/markers": "/front/pare_node/markers",
        "/pare_node/debug_image": "/front/pare_node/debug_image",
        "/pare_node/body_points": "/front/pare_node/body_points",
        "/pare_node/planner_markers": "/front/pare_node/planner_markers",
        "/pare_node/forecast_points": "/front/pare_node/forecast_points"}
    _, (_, plain) = _launch(launch_module, use_rviz="true")
    assert plain["remappings"] == []


def _rviz_displays():
    config = yaml.safe_load((REPO / "rviz" / "pare.rviz").read_text())
    return config["Visualization Manager"]["Displays"]


def test_rviz_config_names_exactly_the_topics_the_launch_file_remaps(launch_module):
    topics = {d["Topic"]["Value"] for d in _rviz_displays() if "Topic" in d}
    assert topics == set(launch_module.RVIZ_TOPICS)


def test_rviz_debug_image_display_agrees_with_the_parameter_default():
    from pare_ros.ros.parameters import BY_NAME

    (debug,) = [d for d in _rviz_displays() if d.get("Topic", {}).get("Value", "").endswith("/debug_image")]
    assert debug["Enabled"] is BY_NAME["publish_debug_image"].default
