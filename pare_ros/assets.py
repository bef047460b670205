"""Finding and loading the model files behind an estimator: official when present, otherwise
(only when explicitly allowed) untrained weights and the synthetic body model, loudly."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import torch

from . import model_files
from .body_model import BodyModel
from .estimator import BodyEstimator
from .network import PARE, load_network

log = logging.getLogger("pare_ros")

# Official checkpoints in order of preference (manifest keys).
CHECKPOINT_KEYS = ("pare_w_3dpw_checkpoint", "pare_checkpoint",
                   "hrnet_w32_conv_pare_mosh", "hrnet_w32_conv_pare")
SMPL_KEYS = ("smpl_{gender}", "J_regressor_extra")


@dataclass
class AssetReport:
    """What an estimator was built from; ``meaningless`` when any stand-in was used."""

    checkpoint: str
    smpl_dir: str
    gender: str
    missing: List[str] = field(default_factory=list)
    backend: str = ""               # inference backend and why it was chosen
    model_dir: str = ""             # the model directory searched, and how it was chosen
    host_threads: str = ""          # threads of the host-side libraries (host_threads.py)

    @property
    def meaningless(self) -> bool:
        return bool(self.missing)

    def banner(self) -> str:
        backend = f"\nbackend: {self.backend}" if self.backend else ""
        if self.host_threads:
            backend += f"\nhost threads: {self.host_threads}"
        model_dir = f"\nmodel directory: {self.model_dir}" if self.model_dir else ""
        if not self.missing:
            return (f"PARE checkpoint {self.checkpoint}; SMPL ({self.gender}) from {self.smpl_dir}"
                    f"{model_dir}{backend}")
        lines = ["*" * 78,
                 "*  RESULTS ARE MEANINGLESS: running with stand-ins for missing model files.",
                 f"*  network: {self.checkpoint}",
                 f"*  body model: {self.smpl_dir}"]
        if self.model_dir:
            lines.append(f"*  model directory: {self.model_dir}")
        lines += [f"*  Provide these files to get real estimates ({model_files.README_PATH}; another",
                  f"*  directory: {model_files.HOW_TO_CHOOSE}):"]
        lines += [f"*    - {m}" for m in self.missing]
        lines.append("*" * 78)
        return "\n".join(lines) + backend


def synthetic_smpl_dir(gender: str = "neutral") -> Path:
    """Where the generated synthetic SMPL-format files are kept (created on demand, one
    gender at a time: each is ~40 MB, mostly pose blend shapes)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pare_ros" / "synthetic_model"
    name = f"SMPL_{gender.upper()}"
    if not any((base / "smpl" / f"{name}{ext}").exists() for ext in (".npz", ".pkl")):
        from .body_model.synthetic import write_synthetic_model_dir

        write_synthetic_model_dir(base, genders=(gender,))
    return base


def untrained_network(seed: int = 0) -> PARE:
    """Seeded PyTorch-default weights; the camera bias is set to the SMPL mean camera
    (s = 0.9) so that the meaningless body is at least drawn at the person's scale."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = PARE()
    torch.random.set_rng_state(generator_state)
    with torch.no_grad():
        model.head.cam_mlp.weight.mul_(0.01)
        model.head.cam_mlp.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
    return model.eval()


def find_checkpoint(model_dir: Path) -> Optional[Path]:
    for key in CHECKPOINT_KEYS:
        path = model_files.resolve(key, model_dir)
        if path.is_file():
            return path
    return None


def build_estimator(
    checkpoint: Optional[Path] = None,
    config: Optional[Path] = None,
    model_dir: Optional[Path] = None,
    smpl_dir: Optional[Path] = None,
    gender: str = "neutral",
    box_scale: float = 1.0,
    device: str = "cpu",
    allow_untrained: bool = False,
):
    """Build a :class:`BodyEstimator` and an :class:`AssetReport`.

    Without ``allow_untrained`` a missing file raises ``model_files.MissingModelFileError``
    naming the expected path and the file's source.
    """
    model_dir_label = f"{model_files.model_root(model_dir)} ({model_files.model_root_origin(model_dir)})"
    model_dir = Path(model_dir) if model_dir else model_files.default_model_dir()
    missing: List[str] = []

    if checkpoint is None:
        checkpoint = find_checkpoint(model_dir)
    if checkpoint is not None:
        network = load_network(checkpoint, device=device, config_path=config)
        checkpoint_label = str(checkpoint)
    elif allow_untrained:
        network = untrained_network().to(device)
        checkpoint_label = "UNTRAINED weights (seeded random)"
        missing.append(model_files.describe(CHECKPOINT_KEYS[0], model_dir))
    else:
        model_files.require(CHECKPOINT_KEYS[0], model_dir)   # raises with path and source
        raise AssertionError("unreachable")

    smpl_root = Path(smpl_dir) if smpl_dir else model_dir
    try:
        body_model = BodyModel.from_dir(smpl_root, gender=gender)
        smpl_label = str(smpl_root)
    except model_files.MissingModelFileError:
        if not allow_untrained:
            raise
        missing += [model_files.describe(key.format(gender=gender), smpl_root) for key in SMPL_KEYS
                    if not model_files.resolve(key.format(gender=gender), smpl_root).exists()]
        synthetic = synthetic_smpl_dir(gender)
        body_model = BodyModel.from_dir(synthetic, gender=gender)
        smpl_label = f"SYNTHETIC SMPL-format model ({synthetic})"

    report = AssetReport(checkpoint_label, smpl_label, gender, missing, model_dir=model_dir_label)
    estimator = BodyEstimator(network, body_model.to(device), box_scale=box_scale, device=device)
    return estimator, report
