"""Reading pare_node's parameters from a ROS 2 parameter YAML without a running node (for the
offline bag command): values for ``/**`` or the node's name, over the declared defaults."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import yaml

from .parameters import BY_NAME, check_choice


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class ParamSource:
    """``p(name)`` like a node's ``get_parameter(name).value``."""

    def __init__(self, path: Optional[str | Path] = None, overrides: Optional[Mapping[str, Any]] = None,
                 node_name: str = "pare_node") -> None:
        values = {name: param.default for name, param in BY_NAME.items()}
        if path:
            document = yaml.safe_load(Path(path).read_text()) or {}
            for section in ("/**", node_name, f"/{node_name}"):
                block = document.get(section, {})
                values.update(_flatten(block.get("ros__parameters", {})))
        values.update(overrides or {})
        unknown = sorted(set(values) - set(BY_NAME))
        if unknown:
            raise ValueError(f"unknown pare_node parameter(s): {', '.join(unknown)}")
        for name, value in values.items():
            problem = check_choice(name, value)
            if problem:
                raise ValueError(problem)
        self.values = values

    def p(self, name: str) -> Any:
        return self.values[name]
