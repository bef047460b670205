"""PARE training loop (pare-model-spec.md §10): ``train(TrainConfig)`` and a thin CLI.

    python -m pare_training.train --config cfg.yaml      # yaml keys = TrainConfig fields

Two-stage part supervision (§10.2): stage 1 (``part_supervision: true``) adds the part
cross-entropy with labels rendered on the fly (:mod:`pare_training.part_labels`) from the GT
SMPL parameters of ``has_smpl`` samples; the camera translation of the GT mesh is estimated from
the GT 2D keypoints (samples with < 4 confident GT joints get no part loss). Stage 2
(``part_supervision: false``) drops the term; initialise it from stage 1 with ``init_checkpoint``.

Checkpoints (``output_dir/checkpoints/step_XXXXXXXX.pth``) use the mmhuman3d layout that
``pare_ros.network.load_network`` reads: ``{"state_dict": {backbone.*, head.*}, "meta": {"epoch",
"step", "config", "pare_ros_version"}, "optimizer": ...}``; with ``resume`` the newest one in the
output directory is continued (weights, optimiser, step, epoch; the per-epoch sample order is
deterministic, so the remaining batches of an interrupted epoch are the ones that follow).
TensorBoard (``output_dir/tb``): loss terms, and images (crop with GT keypoints green and
predicted ones red, part-segmentation argmax, attention maps of a few parts).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import pare_ros
from pare_ros.body_model import BodyModel
from pare_ros.network import PARE, load_network

from .humandata import HumanDataset, MixedDataset
from .losses import LossWeights, PARELoss, part_segm_loss, perspective_projection
from .part_labels import estimate_crop_translation, render_part_labels
from .step import make_optimizer

CKPT_RE = re.compile(r"step_(\d+)\.pth$")
ATTENTION_PARTS = (0, 15, 18, 21)   # pelvis, head, left elbow, right wrist


@dataclass
class DatasetSpec:
    path: str                       # HumanData .npz
    image_root: str
    ratio: float = 1.0
    trust_pickle: bool = False      # needed for the pickled `smpl` key; trusted files only


@dataclass
class TrainConfig:
    datasets: List[DatasetSpec]
    output_dir: str
    model_dir: Optional[str] = None            # body model dir (None: $PARE_ROS_MODEL_DIR / model/)
    epochs: int = 1
    max_steps: Optional[int] = None            # stop after this many optimiser steps in total
    samples_per_epoch: Optional[int] = None    # default: the longest dataset
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.0
    loss_weights: Dict[str, float] = field(default_factory=dict)   # LossWeights overrides
    part_supervision: bool = True              # stage 1 on, stage 2 off (§10.2)
    label_size: int = 224                      # part-label render resolution (56 is cheaper)
    augment: bool = True
    num_workers: int = 0
    device: str = "cpu"
    amp: bool = True                           # float16 autocast + GradScaler, CUDA only
    init_checkpoint: Optional[str] = None      # e.g. stage 1 result for stage 2
    init_cam_scale: float = 0.9                # pred_cam scale bias when training from scratch
    resume: bool = True
    checkpoint_every: Optional[int] = None     # steps; always at each epoch end and at the end
    log_every: int = 50
    image_every: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        self.datasets = [d if isinstance(d, DatasetSpec) else DatasetSpec(**d)
                         for d in self.datasets]
        unknown = set(self.loss_weights) - {f.name for f in dataclasses.fields(LossWeights)}
        if unknown:
            raise ValueError(f"unknown loss weight(s) {sorted(unknown)}")
        if not self.datasets:
            raise ValueError("at least one dataset is needed")


class PartLabelDataset(Dataset):
    """Adds ``part_labels`` (long [S,S]) and ``has_part_labels`` to a dataset's items, rendered
    from the GT SMPL parameters placed with the translation fitted to the GT 2D keypoints."""

    def __init__(self, dataset: Any, body_model: BodyModel, focal_length: float = 5000.0,
                 img_res: int = 224, label_size: int = 224) -> None:
        self.dataset, self.body = dataset, body_model
        self.focal_length, self.img_res, self.label_size = focal_length, img_res, label_size
        self.faces, self.vertex_parts = body_model.faces, body_model.vertex_parts

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:          # set_epoch etc. of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        item = self.dataset[i]
        labels = torch.zeros(self.label_size, self.label_size, dtype=torch.long)
        ok = False
        if float(item["has_smpl"]) > 0:
            with torch.no_grad():
                out = self.body(item["pose_rotmat"][None].float(), item["betas"][None].float())
            t = estimate_crop_translation(out.joints49[0, 25:].numpy(),
                                          item["keypoints"][25:].numpy(), self.focal_length,
                                          self.img_res)
            if t is not None:
                k = self.label_size / self.img_res
                lab = render_part_labels(out.vertices[0].numpy() + t, self.faces,
                                         self.vertex_parts, self.focal_length * k,
                                         size=self.label_size)
                labels, ok = torch.from_numpy(lab.astype(np.int64)), True
        item["part_labels"] = labels
        item["has_part_labels"] = torch.tensor(float(ok))
        return item


class StagedLoss(torch.nn.Module):
    """PARELoss without its own part term, plus the part term over ``has_part_labels`` samples
    when ``part_supervision`` (same weighting: loss_weight · part_segm · CE)."""

    def __init__(self, body_model: BodyModel, weights: LossWeights, part_supervision: bool,
                 focal_length: float = 5000.0, img_res: int = 224) -> None:
        super().__init__()
        self.weights, self.part_supervision = weights, part_supervision
        self.base = PARELoss(body_model, dataclasses.replace(weights, part_segm=0.0),
                             focal_length, img_res)

    def forward(self, pred, batch):
        total, terms = self.base(pred, batch)
        w = self.weights
        if self.part_supervision and w.part_segm and "part_labels" in batch:
            segm = part_segm_loss(pred["pred_segm_mask"].float(), batch["part_labels"],
                                  batch["has_part_labels"])
            total = total + w.loss_weight * w.part_segm * segm
            terms["part_segm"] = segm.detach()
            terms["total"] = total.detach()
        return total, terms


def _to_device(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def latest_checkpoint(output_dir: str | Path) -> Optional[Path]:
    """The checkpoint with the highest step under ``output_dir/checkpoints`` (None if none)."""
    found = [(int(m.group(1)), p) for p in Path(output_dir, "checkpoints").glob("step_*.pth")
             if (m := CKPT_RE.search(p.name))]
    return max(found)[1] if found else None


def save_checkpoint(path: Path, model: PARE, optimizer, epoch: int, step: int,
                    config: TrainConfig, scaler=None) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {"state_dict": state,
            "meta": {"epoch": epoch, "step": step, "config": dataclasses.asdict(config),
                     "pare_ros_version": pare_ros.__version__},
            "optimizer": optimizer.state_dict()}
    if scaler is not None:
        ckpt["scaler"] = scaler.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)


def build_dataset(config: TrainConfig, body_model: BodyModel) -> Dataset:
    from .augment import Augmenter
    sets = [HumanDataset(d.path, d.image_root, trust_pickle=d.trust_pickle,
                         augment=Augmenter() if config.augment else None, seed=config.seed + k)
            for k, d in enumerate(config.datasets)]
    ds = MixedDataset(sets, [d.ratio for d in config.datasets], config.samples_per_epoch,
                      seed=config.seed)
    if config.part_supervision:
        ds = PartLabelDataset(ds, body_model, label_size=config.label_size)
    return ds


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
    """Run training; returns {"step", "epoch", "checkpoint", "last_terms"}."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    device = torch.device(config.device)
    use_amp = config.amp and device.type == "cuda"
    torch.manual_seed(config.seed)
    out_dir = Path(config.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = BodyModel.from_dir(config.model_dir)
    dataset = build_dataset(config, body)
    steps_per_epoch = len(dataset) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(dataset)} samples per epoch < batch size {config.batch_size}")

    model = PARE()
    if config.init_checkpoint:
        model.load_state_dict(load_network(config.init_checkpoint).state_dict())
    else:
        with torch.no_grad():
            model.head.cam_mlp.bias[0] = config.init_cam_scale
    model.to(device)
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    loss_fn = StagedLoss(body, LossWeights(**config.loss_weights), config.part_supervision).to(device)

    step, epoch = 0, 0
    resumed = latest_checkpoint(out_dir) if config.resume else None
    if resumed is not None:
        ckpt = torch.load(resumed, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scaler is not None and "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        step = int(ckpt["meta"]["step"])
        epoch = step // steps_per_epoch
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    writer = SummaryWriter(str(out_dir / "tb"), purge_step=step if resumed else None)
    ckpt_path, terms = resumed, {}
    try:
        while step < total_steps:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            order = np.random.default_rng((config.seed, epoch)).permutation(len(dataset))
            start = step - epoch * steps_per_epoch
            order = order[start * config.batch_size: steps_per_epoch * config.batch_size]
            loader = DataLoader(dataset, batch_size=config.batch_size, sampler=order.tolist(),
                                num_workers=config.num_workers, drop_last=True,
                                pin_memory=device.type == "cuda")
            n = min(len(order) // config.batch_size, total_steps - step)
            bar = tqdm(loader, total=n, desc=f"epoch {epoch}", initial=0, leave=False)
            for batch in bar:
                if step >= total_steps:
                    break
                batch = _to_device(batch, device)
                model.train()
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    pred = model(batch["img"])
                pred = {k: v.float() for k, v in pred.items()}
                total, t = loss_fn(pred, batch)
                if not torch.isfinite(total):
                    raise FloatingPointError(f"non-finite loss at step {step}: "
                                             f"{ {k: float(v) for k, v in t.items()} }")
                if scaler is not None:
                    scaler.scale(total).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    total.backward()
                    optimizer.step()
                step += 1
                terms = {k: float(v) for k, v in t.items()}
                bar.set_postfix(loss=f"{terms['total']:.3g}")
                if step % config.log_every == 0 or step == 1:
                    for k, v in terms.items():
                        writer.add_scalar(f"loss/{k}", v, step)
                if step % config.image_every == 0 or step == 1:
                    joints = perspective_projection(
                        body.to(device)(pred["pred_pose"], pred["pred_shape"]).joints49,
                        pred["pred_cam_t"])
                    for name, im in example_images(batch, pred, joints).items():
                        writer.add_image(f"train/{name}", im, step, dataformats="HWC")
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    ckpt_path = out_dir / "checkpoints" / f"step_{step:08d}.pth"
                    save_checkpoint(ckpt_path, model, optimizer, epoch, step, config, scaler)
            bar.close()
            if step % steps_per_epoch == 0:
                epoch = step // steps_per_epoch
            path = out_dir / "checkpoints" / f"step_{step:08d}.pth"
            if not path.exists():
                save_checkpoint(path, model, optimizer, epoch, step, config, scaler)
            ckpt_path = path
    finally:
        writer.close()
    return {"step": step, "epoch": epoch, "checkpoint": ckpt_path, "last_terms": terms}


def load_config(path: str | Path) -> TrainConfig:
    """YAML (safe_load) mapping of :class:`TrainConfig` fields → TrainConfig."""
    import yaml
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of TrainConfig fields")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; valid: {sorted(names)}")
    return TrainConfig(**data)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pare_training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML with TrainConfig fields")
    args = parser.parse_args(argv)
    result = train(load_config(args.config))
    print(f"finished at step {result['step']}: {result['checkpoint']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
