"""pare_node's parameter table: config/pare.yaml agrees with it, and an integer given for a
float parameter (``expected_rate: 30``) is accepted."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from pare_ros.ros.parameters import BY_NAME, PARAMETERS, coerce  # noqa: E402

YAML = Path(__file__).parents[1] / "config" / "pare.yaml"


def _flatten(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def test_yaml_lists_every_parameter_with_its_default():
    values = dict(_flatten(yaml.safe_load(YAML.read_text())["/**"]["ros__parameters"]))
    missing, unknown = set(BY_NAME) - set(values), set(values) - set(BY_NAME)
    assert not missing, f"add these parameters to config/pare.yaml: {sorted(missing)}"
    assert not unknown, f"config/pare.yaml sets parameters the node does not declare: {sorted(unknown)}"
    assert {name: v for name, v in values.items() if v != BY_NAME[name].default} == {}


def test_coerce_integer_to_float_and_reject_other_types():
    assert coerce("expected_rate", 30) == 30.0 and isinstance(coerce("expected_rate", 30), float)
    assert coerce("detector.max_people", 3) == 3               # integer parameters untouched
    with pytest.raises(ValueError, match="expected_rate must be a number"):
        coerce("expected_rate", "fast")
    with pytest.raises(ValueError, match=r"expected_rate must be in \[0.01, 1000.0\]"):
        coerce("expected_rate", 0)


def test_integer_override_for_a_float_parameter_is_declared():
    import rclpy
    from rclpy.parameter import Parameter

    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "expected_rate:=30", "-p", "max_image_age:=1"])
    try:
        node = rclpy.create_node("param_check", context=context)
        for param in PARAMETERS:      # raised InvalidParameterTypeException before
            node.declare_parameter(param.name, param.default, param.descriptor())
        assert coerce("expected_rate", node.get_parameter("expected_rate").value) == 30.0
        assert node.get_parameter("max_image_age").value == 1
        # Static typing stays for the other types: a string for an integer is refused.
        result = node.set_parameters([Parameter("detector.max_people", value="many")])[0]
        assert not result.successful
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_output_qos_parameters_build_the_publishers_profile():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from pare_ros.ros.node_lifecycle import NodeLifecycle

    profile = NodeLifecycle._qos(None, "best_effort", 3)
    assert (profile.reliability, profile.depth, profile.durability) == \
        (ReliabilityPolicy.BEST_EFFORT, 3, DurabilityPolicy.VOLATILE)
    assert NodeLifecycle._qos(None, "reliable", 10).reliability == ReliabilityPolicy.RELIABLE
    assert set(BY_NAME["output_qos.reliability"].choices) == {"reliable", "best_effort"}
