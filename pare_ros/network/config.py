"""Configuration of the PARE network and the reading of PARE's companion YAML files.

The released checkpoints ship with a yacs YAML (``pare_config.yaml``) next to them. Options that
change tensor shapes are self-checking (a strict load fails); the others silently change the
computation, so every option this implementation does not reproduce is refused with a message
naming it (reference spec §0, §2).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml


class UnsupportedConfigError(ValueError):
    """The configuration asks for a PARE variant this implementation does not reproduce."""


@dataclass(frozen=True)
class PareConfig:
    """Constructor options of the PARE network (defaults: the released HRNet-W32 model)."""

    backbone: str = "hrnet_w32-conv"
    num_joints: int = 24
    num_deconv_layers: int = 2
    num_deconv_filters: int = 128
    num_features_smpl: int = 64
    img_res: int = 224
    focal_length: float = 5000.0


# yacs key → value this implementation requires (the released model's value).
_REQUIRED = {
    ("PARE", "BACKBONE"): "hrnet_w32-conv",
    ("PARE", "NUM_JOINTS"): 24,
    ("DATASET", "USE_HEATMAPS"): "part_segm",
    ("PARE", "USE_KEYPOINT_ATTENTION"): True,
    ("PARE", "KEYPOINT_ATTENTION_ACT"): "softmax",
    ("PARE", "USE_POSTCONV_KEYPOINT_ATTENTION"): False,
    ("PARE", "USE_SCALE_KEYPOINT_ATTENTION"): False,
    ("PARE", "SOFTMAX_TEMP"): 1.0,
    ("PARE", "ITERATIVE_REGRESSION"): False,
    ("PARE", "POSE_MLP_NUM_LAYERS"): 1,
    ("PARE", "SHAPE_MLP_NUM_LAYERS"): 1,
    ("PARE", "USE_HMR_REGRESSION"): False,
    ("PARE", "USE_COATTENTION"): False,
    ("PARE", "USE_SOFT_ATTENTION"): False,
    ("PARE", "NUM_BRANCH_ITERATION"): 0,
    ("PARE", "BRANCH_DEEPER"): False,
    ("PARE", "USE_BRANCH_NONLOCAL"): None,
    ("PARE", "USE_FINAL_NONLOCAL"): None,
    ("PARE", "USE_UPSAMPLING"): False,
    ("PARE", "USE_RESNET_CONV_HRNET"): False,
    ("PARE", "USE_POS_ENC"): False,
    ("PARE", "USE_KEYPOINT_FEATURES_FOR_SMPL_REGRESSION"): False,
    ("PARE", "USE_MEAN_CAMSHAPE"): False,
    ("PARE", "USE_MEAN_POSE"): False,
    ("DATASET", "IMG_RES"): 224,
}
# yacs key → PareConfig field for options this implementation follows.
_FOLLOWED = {
    ("PARE", "NUM_DECONV_LAYERS"): "num_deconv_layers",
    ("PARE", "NUM_DECONV_FILTERS"): "num_deconv_filters",
    ("PARE", "NUM_FEATURES_SMPL"): "num_features_smpl",
    ("DATASET", "FOCAL_LENGTH"): "focal_length",
}


def _same(found: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or wanted is None:
        return found is wanted or (wanted is None and found in ("", "None", "none"))
    if isinstance(wanted, (int, float)):
        return isinstance(found, (int, float)) and not isinstance(found, bool) \
            and abs(float(found) - float(wanted)) < 1e-9
    return str(found).lower() == str(wanted).lower()


def config_from_mapping(cfg: Mapping[str, Any], source: str = "config") -> PareConfig:
    """Build a :class:`PareConfig` from a yacs-style nested mapping (``PARE:``, ``DATASET:``).

    Keys that are absent keep the released model's value.
    Raises:
        UnsupportedConfigError: naming every option whose value is not reproduced here.
    """
    problems = []
    for (section, key), wanted in _REQUIRED.items():
        block = cfg.get(section) or {}
        if key in block and not _same(block[key], wanted):
            problems.append(f"{section}.{key}={block[key]!r} (supported: {wanted!r})")
    values: dict = {}
    for (section, key), field_name in _FOLLOWED.items():
        block = cfg.get(section) or {}
        if key in block:
            value = block[key]
            if isinstance(value, (list, tuple)):  # NUM_DECONV_FILTERS may be a per-layer list
                if len(set(value)) != 1:
                    problems.append(f"{section}.{key}={value!r} (only equal widths supported)")
                    continue
                value = value[0]
            values[field_name] = float(value) if field_name == "focal_length" else int(value)
    if problems:
        raise UnsupportedConfigError(
            f"{source} asks for a PARE variant this implementation does not reproduce: "
            + "; ".join(problems)
        )
    return PareConfig(**values)


def load_config_yaml(path: str | Path) -> PareConfig:
    """Read PARE's companion YAML (``yaml.safe_load``: no Python objects are constructed)."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UnsupportedConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(cfg, Mapping):
        raise UnsupportedConfigError(f"{path} does not hold a PARE configuration mapping")
    return config_from_mapping(cfg, source=str(path))


def companion_yaml(checkpoint: str | Path) -> Path | None:
    """The YAML released next to a checkpoint: ``X_checkpoint.ckpt`` → ``X_config.yaml``,
    else ``X.yaml``; None when neither exists."""
    checkpoint = Path(checkpoint)
    stem = checkpoint.stem
    candidates = [checkpoint.with_name(stem.replace("_checkpoint", "_config") + ".yaml"),
                  checkpoint.with_suffix(".yaml")]
    return next((c for c in candidates if c.is_file() and c != checkpoint), None)
