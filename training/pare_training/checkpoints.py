"""Training checkpoints: ``output_dir/checkpoints/step_XXXXXXXX.pth``.

Layout (the mmhuman3d one that ``pare_ros.network.load_network`` reads for the weights):
``{"state_dict": {backbone.*, head.*}, "meta": {epoch, step, samples_seen, global_batch,
world_size, config, pare_ros_version}, "optimizer", "scheduler", ["scaler"]}``. Written by
global rank 0 only, atomically (temporary file + rename), so a kill never leaves a half file
under the final name. Read back with ``weights_only=True`` (no code from the file runs).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Dict, Optional

import torch

import pare_ros

CKPT_RE = re.compile(r"step_(\d+)\.pth$")


def checkpoint_path(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir, "checkpoints", f"step_{step:08d}.pth")


def latest_checkpoint(output_dir: str | Path) -> Optional[Path]:
    """The checkpoint with the highest step under ``output_dir/checkpoints`` (None if none)."""
    found = [(int(m.group(1)), p) for p in Path(output_dir, "checkpoints").glob("step_*.pth")
             if (m := CKPT_RE.search(p.name))]
    return max(found)[1] if found else None


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer, epoch: int, step: int,
                    config: Any, scaler=None, scheduler=None,
                    extra_meta: Optional[Dict[str, Any]] = None) -> None:
    """``model`` is the bare module (not the DDP wrapper: keys must not start with module.)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta = {"epoch": epoch, "step": step, "config": dataclasses.asdict(config),
            "pare_ros_version": pare_ros.__version__, **(extra_meta or {})}
    ckpt = {"state_dict": state, "meta": meta, "optimizer": optimizer.state_dict()}
    if scheduler is not None:
        ckpt["scheduler"] = scheduler.state_dict()
    if scaler is not None:
        ckpt["scaler"] = scaler.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> Dict[str, Any]:
    """A training checkpoint (weights-only unpickler: tensors, containers, plain values)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_init_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Initialise ``model`` from a checkpoint: official PARE ``.ckpt``/``.pth`` or one trained
    here (PARE through the strict, safe ``load_network``; other models: their state_dict)."""
    from pare_ros.network import PARE, load_network
    if isinstance(model, PARE):
        model.load_state_dict(load_network(path).state_dict())
    else:
        model.load_state_dict(load_checkpoint(path)["state_dict"])
