"""Loading official PARE checkpoints into :class:`~pare_ros.network.pare.PARE`.

Two released layouts are recognised (reference spec §7):

* original PARE PyTorch-Lightning ``.ckpt``: ``ckpt["state_dict"]`` with ``model.backbone.*`` /
  ``model.head.*`` plus SMPL and trainer helper buffers, hyper-parameters as a yacs CfgNode;
* mmhuman3d ``.pth``: ``ckpt["state_dict"]`` with ``backbone.*`` / ``head.*`` plus the
  ``body_model_train/test`` SMPL wrappers, ``meta`` and usually ``optimizer``.

Checkpoints written by this project's training package use the mmhuman3d layout. Loading is
strict: every missing, unexpected or mis-shaped key is reported by name with both shapes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import torch

from ..safe_load import load_torch_checkpoint
from .config import PareConfig, companion_yaml, config_from_mapping, load_config_yaml
from .pare import PARE

# Buffers the released model carries but never uses; older checkpoints may lack them.
OPTIONAL_KEYS = frozenset({"head.init_pose", "head.init_shape", "head.init_cam"})
# SMPL layers and training/evaluation helpers stored next to the network weights.
IGNORED_PREFIXES = (
    "smpl.", "smpl_native.", "body_model_train.", "body_model_test.", "body_model.",
)
IGNORED_KEYS = frozenset({
    "J_regressor", "K", "R", "smpl_faces", "body_part_texture", "part_label_bins",
})
MAX_LISTED = 25


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded into the PARE network; the message says exactly why."""


@dataclass
class CheckpointInfo:
    path: str
    layout: str                      # "pare-lightning" | "mmhuman3d" | "state_dict"
    config_source: str               # where the network options came from
    ignored_keys: int = 0
    extras: Dict[str, Any] = field(default_factory=dict)


def _strip_prefix(key: str) -> str:
    for prefix in ("model.", "module."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def detect_layout(checkpoint: Any, path: str = "checkpoint") -> Tuple[str, Mapping[str, Any]]:
    """Return (layout name, raw state dict) of a loaded checkpoint object."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path}: expected a dict-like checkpoint, found {type(checkpoint).__name__}")
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{path}: no state_dict with weights in the file")
    keys = list(state.keys())
    if any(not isinstance(k, str) for k in keys):
        raise CheckpointError(f"{path}: state_dict keys are not all strings")
    if any(k.startswith("model.backbone.") or k.startswith("model.head.") for k in keys):
        return "pare-lightning", state
    if any(k.startswith(("backbone.", "head.", "module.backbone.", "module.head.")) for k in keys):
        return ("mmhuman3d" if "state_dict" in checkpoint else "state_dict"), state
    sample = ", ".join(keys[:5])
    raise CheckpointError(
        f"{path}: not a PARE checkpoint: no 'backbone.*'/'head.*' weights (first keys: {sample})"
    )


def _network_state(state: Mapping[str, Any], path: str) -> Tuple[Dict[str, torch.Tensor], int]:
    weights: Dict[str, torch.Tensor] = {}
    unexpected: List[str] = []
    ignored = 0
    for raw_key, value in state.items():
        key = _strip_prefix(raw_key)
        if key.startswith(("backbone.", "head.")):
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{path}: entry {raw_key} is a {type(value).__name__}, not a tensor")
            weights[key] = value
        elif key.startswith(IGNORED_PREFIXES) or key in IGNORED_KEYS:
            ignored += 1
        else:
            unexpected.append(raw_key)
    if unexpected:
        raise CheckpointError(f"{path}: unexpected entries: " + _listing(unexpected))
    return weights, ignored


def _listing(items: List[str]) -> str:
    shown = items[:MAX_LISTED]
    more = f" ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return "; ".join(shown) + more


def check_state_dict(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], path: str) -> None:
    """Raise :class:`CheckpointError` naming every missing, unexpected or mis-shaped key."""
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in weights and k not in OPTIONAL_KEYS]
    if missing:
        problems.append(f"{len(missing)} missing: " + _listing(
            [f"{k} (expected shape {list(expected[k].shape)})" for k in missing]))
    unexpected = [k for k in weights if k not in expected]
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: " + _listing(
            [f"{k} (shape {list(weights[k].shape)})" for k in unexpected]))
    mis_shaped = [k for k in weights if k in expected and weights[k].shape != expected[k].shape]
    if mis_shaped:
        problems.append(f"{len(mis_shaped)} with wrong shape: " + _listing(
            [f"{k}: expected {list(expected[k].shape)}, found {list(weights[k].shape)}"
             for k in mis_shaped]))
    wrong_kind = [k for k in weights if k in expected and k not in mis_shaped
                  and weights[k].is_floating_point() != expected[k].is_floating_point()]
    if wrong_kind:
        problems.append("wrong dtype kind: " + _listing(
            [f"{k}: expected {expected[k].dtype}, found {weights[k].dtype}" for k in wrong_kind]))
    if problems:
        raise CheckpointError(
            f"{path} does not match the PARE HRNet-W32 network: " + " | ".join(problems))


def _config_for(checkpoint: Any, path: Path, config_path: str | Path | None) -> Tuple[PareConfig, str]:
    yaml_path = Path(config_path) if config_path else companion_yaml(path)
    if yaml_path is not None:
        return load_config_yaml(yaml_path), str(yaml_path)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
    if isinstance(hparams, Mapping) and isinstance(hparams.get("PARE"), Mapping):
        return config_from_mapping(hparams, source=f"{path} hyper_parameters"), \
            f"{path}:hyper_parameters"
    return PareConfig(), "released defaults (no companion YAML found)"


def load_network(
    checkpoint_path: str | Path,
    device: str | torch.device = "cpu",
    config_path: str | Path | None = None,
) -> PARE:
    """Build PARE and load an official (or project-trained) checkpoint strictly.

    Args:
        checkpoint_path: original PARE ``.ckpt`` or mmhuman3d-style ``.pth``.
        device: where the returned model lives.
        config_path: PARE YAML to read the options from; default: the companion YAML next to
            the checkpoint (``*_config.yaml``), else the checkpoint's own hyper-parameters,
            else the released configuration.
    Returns:
        The network in eval mode, with ``checkpoint_info`` (:class:`CheckpointInfo`) attached.
    Raises:
        FileNotFoundError, CheckpointError, safe_load.CorruptFileError,
        safe_load.UnsafeFileError, config.UnsupportedConfigError.
    """
    path = Path(checkpoint_path)
    checkpoint = load_torch_checkpoint(path, map_location="cpu")
    layout, state = detect_layout(checkpoint, str(path))
    config, config_source = _config_for(checkpoint, path, config_path)
    weights, ignored = _network_state(state, str(path))

    model = PARE(config)
    check_state_dict(model, weights, str(path))
    model.load_state_dict(weights, strict=False)   # strictness enforced by check_state_dict
    model.checkpoint_info = CheckpointInfo(str(path), layout, config_source, ignored)
    return model.eval().to(device)
