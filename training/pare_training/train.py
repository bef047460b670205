"""PARE training (pare-model-spec.md §10): ``train(config)`` and the CLI.

    python -m pare_training.train --config cfg.yaml                     # one process
    torchrun --nproc_per_node 4 -m pare_training.train --config cfg.yaml  # 4 GPUs, DDP
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \
        --rdzv_id JOB -m pare_training.train --config cfg.yaml           # 2 nodes × 8 GPUs

YAML keys = :class:`pare_training.config.TrainConfig` fields. The pieces live in:
``config`` (fields, YAML), ``distributed`` (process group from torchrun's environment),
``data_loading`` (global sample order, part labels, bad samples), ``loop`` (one stage: DDP,
mixed precision, accumulation, checkpoints, TensorBoard), ``recipe`` (the two stages of §10.2
from one config), ``schedule`` (LR), ``checkpoints``.

Two-stage part supervision (§10.2): stage 1 (``part_supervision: true``) adds the part
cross-entropy with labels rendered on the fly (:mod:`pare_training.part_labels`) from the GT
SMPL parameters of ``has_smpl`` samples; the camera translation of the GT mesh is estimated from
the GT 2D keypoints (samples with < 4 confident GT joints get no part loss). Stage 2
(``part_supervision: false``) drops the term and starts from stage 1's result.

A rerun with the same ``output_dir`` resumes from the newest checkpoint (weights, optimiser,
LR schedule, grad scaler, step) at the same global sample position, also on another process
count. TensorBoard (``output_dir/tb``): loss terms, LR, unreadable-sample count, and images
(crop with GT keypoints green and predicted ones red, part-segmentation argmax, attention maps).
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from . import distributed as dist_utils
from .checkpoints import CKPT_RE, latest_checkpoint, save_checkpoint
from .config import DatasetSpec, TrainConfig, load_config
from .data_loading import PartLabelDataset, build_dataset
from .losses import StagedLoss

ATTENTION_PARTS = (0, 15, 18, 21)   # pelvis, head, left elbow, right wrist


def _colour_labels(lab: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    lut = np.concatenate([[[0, 0, 0]], rng.integers(40, 256, (24, 3))]).astype(np.uint8)
    return lut[lab]


def example_images(batch: Dict[str, Any], pred: Dict[str, torch.Tensor], joints2d: torch.Tensor
                   ) -> Dict[str, np.ndarray]:
    """uint8 HWC images of the first sample: overlay, segmentation argmax, attention maps."""
    import cv2
    from pare_ros.preprocessing import IMAGENET_MEAN, IMAGENET_STD
    img = batch["img"][0].detach().float().cpu().permute(1, 2, 0).numpy()
    img = np.clip((img * np.asarray(IMAGENET_STD) + np.asarray(IMAGENET_MEAN)) * 255, 0, 255)
    img = np.ascontiguousarray(img.astype(np.uint8))
    size = img.shape[0]
    gt = batch["keypoints"][0].detach().cpu().numpy()
    pj = joints2d[0].detach().float().cpu().numpy()
    for (x, y), c in zip((gt[25:, :2] + 1) * size / 2, gt[25:, 2]):
        if c > 0:
            cv2.circle(img, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1)
    for x, y in (pj[25:] + 1) * size / 2:
        if np.isfinite(x) and np.isfinite(y) and abs(x) < 1e4 and abs(y) < 1e4:
            cv2.circle(img, (int(round(x)), int(round(y))), 2, (255, 0, 0), -1)
    segm = pred["pred_segm_mask"][0].detach().float().argmax(0).cpu().numpy()
    out = {"overlay": img,
           "segm_argmax": cv2.resize(_colour_labels(segm), (size, size),
                                     interpolation=cv2.INTER_NEAREST)}
    if "part_labels" in batch:
        out["segm_gt"] = _colour_labels(batch["part_labels"][0].cpu().numpy())
    att = pred["part_attention"][0].detach().float().cpu().numpy()
    tiles = []
    for p in ATTENTION_PARTS:
        a = att[p] / max(att[p].max(), 1e-12)
        tiles.append(cv2.applyColorMap((cv2.resize(a, (size // 2, size // 2)) * 255).astype(
            np.uint8), cv2.COLORMAP_JET)[..., ::-1])
    out["attention_parts_" + "_".join(map(str, ATTENTION_PARTS))] = np.concatenate(tiles, 1)
    return out


def train(config: TrainConfig) -> Dict[str, Any]:
    """Run (or resume) ``config`` — one stage, or the ``stages`` recipe; returns {"step",
    "epoch", "checkpoint", "last_terms", "data_report"[, "stages"]}. Under torchrun every
    process calls this; only rank 0 writes files."""
    from .recipe import run
    return run(config)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pare_training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML with TrainConfig fields")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    try:
        result = train(config)
    finally:
        dist_utils.cleanup()
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"finished at step {result['step']}: {result['checkpoint']}")
    return 0


__all__ = ["TrainConfig", "DatasetSpec", "load_config", "train", "main", "PartLabelDataset",
           "StagedLoss", "build_dataset", "latest_checkpoint", "save_checkpoint", "CKPT_RE",
           "example_images"]


if __name__ == "__main__":
    raise SystemExit(main())
