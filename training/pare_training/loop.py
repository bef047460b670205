"""One training stage: ``train_stage(config)``, in one process or as one of a torchrun job.

Per optimiser step each process runs ``grad_accum_steps`` micro-batches (gradients of all but
the last are kept local with DDP's ``no_sync``), the losses are divided by the accumulation
count, and DDP averages the gradients over the processes: the update equals a 1-process step
over the same global batch (exactly so when each loss term is a plain per-sample mean, as here
when every sample has the same supervision; masked terms such as the 3D loss over samples
with 3D are averaged per micro-batch, as in every data-parallel PARE/SPIN trainer).

Rank 0 alone writes TensorBoard, checkpoints, ``config.yaml``, ``run_info.json``,
``data_report.json`` and (``record_sample_order``) ``sample_order.jsonl``; the logged loss
terms are averaged over the processes.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import pare_ros
from pare_ros.body_model import BodyModel
from pare_ros.network import PARE

from . import distributed as dist_utils
from .checkpoints import (checkpoint_path, latest_checkpoint, load_checkpoint, load_init_weights,
                          save_checkpoint)
from .config import TrainConfig, save_config
from .data_loading import (BadSampleLog, GlobalOrderSampler, build_dataset, check_dataset_paths,
                           make_loader, steps_per_epoch)
from .losses import LossWeights, StagedLoss, perspective_projection
from .schedule import make_scheduler
from .step import make_optimizer

AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> Tuple[str, Optional[torch.dtype]]:
    """("bf16" | "fp16" | "fp32", autocast dtype or None). auto: bf16 on GPUs that support it,
    fp16 (with a GradScaler) on older GPUs, fp32 on CPU."""
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 (autocast + GradScaler) needs a CUDA device; use fp32 "
                         "or bf16 on CPU")
    return precision, AMP_DTYPES[precision]


def build_model(config: TrainConfig, device: torch.device) -> nn.Module:
    """Same initial weights on every process (seeded; DDP also broadcasts rank 0's)."""
    torch.manual_seed(config.seed)
    if config.model == "tiny":
        from .tiny_model import TinyPARE
        model: nn.Module = TinyPARE()
    else:
        model = PARE()
        # HRNet's keypoint head is in the checkpoint layout but not in PARE's forward: without
        # a gradient it would make DDP stop ("parameters that were not used in producing loss")
        model.backbone.final_layer.requires_grad_(False)
    if config.init_checkpoint:
        load_init_weights(model, config.init_checkpoint)
    else:
        with torch.no_grad():
            model.head.cam_mlp.bias[0] = config.init_cam_scale
    if config.batchnorm == "sync":
        if device.type != "cuda":
            raise ValueError("batchnorm: sync uses torch SyncBatchNorm, which runs on GPUs only; "
                             "on CPU use batchnorm: local or frozen")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model.to(device)


def _set_train_mode(model: nn.Module, batchnorm: str) -> None:
    model.train()
    if batchnorm == "frozen":           # running statistics fixed, affine parameters trained
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def _to_device(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def _git_commit() -> Optional[str]:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _record_launch(out_dir: Path, info: Dict[str, Any]) -> None:
    path = out_dir / "run_info.json"
    launches = json.loads(path.read_text()) if path.is_file() else []
    launches.append(info)
    path.write_text(json.dumps(launches, indent=1))


def _truncate_order(path: Path, step: int) -> None:
    """Drop sample-order lines of steps after ``step`` (written by a killed run after its
    last checkpoint: the resume redoes them)."""
    if path.is_file():
        keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        path.write_text("".join(ln + "\n" for ln in keep))


class _Stage:
    """State of one running stage (kept in one object so the step logic stays readable)."""

    def __init__(self, config: TrainConfig, ctx: dist_utils.DistContext) -> None:
        self.config, self.ctx = config, ctx
        self.device = ctx.device
        self.precision, self.amp_dtype = resolve_precision(config.precision, self.device)
        self.micro = config.micro_batch(ctx.world_size)
        self.out_dir = Path(config.output_dir)
        check_dataset_paths(config)                  # fail in seconds, not after loading
        self.body = BodyModel.from_dir(config.model_dir)
        self.bad_log = BadSampleLog()
        self.dataset = build_dataset(config, self.body, self.bad_log)
        self.steps_per_epoch = steps_per_epoch(len(self.dataset), config.batch_size)
        self.sampler = GlobalOrderSampler(self.dataset, config.batch_size, self.micro,
                                          config.grad_accum_steps, ctx.world_size, ctx.rank,
                                          config.seed)
        self.model = build_model(config, self.device)
        self.optimizer = make_optimizer(self.model, config.lr, config.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        # the loss gets its own body model: the dataset's copy stays on the CPU for workers
        self.loss_fn = StagedLoss(copy.deepcopy(self.body), LossWeights(**config.loss_weights),
                                  config.part_supervision).to(self.device)
        self.step = 0
        self.resumed: Optional[Path] = None

    # -- resume --------------------------------------------------------------------------------
    def resume(self) -> None:
        found = None
        if self.config.resume and self.ctx.is_main:
            latest = latest_checkpoint(self.out_dir)
            found = str(latest) if latest else None
        found = dist_utils.broadcast_object(self.ctx, found)   # every rank loads the same file
        if found is None:
            return
        ckpt = load_checkpoint(found)
        meta = ckpt["meta"]
        batch = int(meta.get("global_batch", meta["config"]["batch_size"]))
        if batch != self.config.batch_size:
            raise ValueError(
                f"{found}: trained with global batch_size {batch}, config has "
                f"{self.config.batch_size}; a resume continues by global sample position and "
                "needs the same global batch (the per-process batch adapts to the process count)")
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if "scheduler" in ckpt:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.resumed = int(meta["step"]), Path(found)

    # -- one optimiser step ----------------------------------------------------------------------
    def optimizer_step(self, net: nn.Module, batches) -> Tuple[Dict[str, float], Dict, Dict,
                                                               torch.Tensor]:
        cfg, ctx = self.config, self.ctx
        _set_train_mode(net, cfg.batchnorm)
        self.optimizer.zero_grad(set_to_none=True)
        terms: Dict[str, float] = {}
        positions: List[torch.Tensor] = []
        accum = cfg.grad_accum_steps
        for a in range(accum):
            batch = next(batches)
            self.bad_log.add(batch.pop("bad_samples"), len(batch["img"]))
            positions.append(batch["sample_position"])
            batch = _to_device(batch, self.device)
            local = ctx.distributed and a < accum - 1       # keep gradients local until the last
            with net.no_sync() if local else contextlib.nullcontext():
                with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                    enabled=self.amp_dtype is not None):
                    pred = net(batch["img"])
                pred = {k: v.float() for k, v in pred.items()}
                total, t = self.loss_fn(pred, batch)
                if not dist_utils.all_true(ctx, bool(torch.isfinite(total))):
                    raise FloatingPointError(f"non-finite loss at step {self.step} on a rank: "
                                             f"{ {k: float(v) for k, v in t.items()} }")
                loss = total / accum
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            for k, v in t.items():
                terms[k] = terms.get(k, 0.0) + float(v) / accum
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return terms, batch, pred, torch.cat(positions)

    def save(self, epoch: int) -> Path:
        path = checkpoint_path(self.out_dir, self.step)
        report = self.data_report()               # collective: every rank takes part
        if self.ctx.is_main:
            if not path.exists():
                save_checkpoint(path, self.model, self.optimizer, epoch, self.step, self.config,
                                self.scaler, self.scheduler,
                                {"samples_seen": self.step * self.config.batch_size,
                                 "global_batch": self.config.batch_size,
                                 "world_size": self.ctx.world_size, "precision": self.precision})
            (self.out_dir / "data_report.json").write_text(json.dumps(report, indent=1))
        dist_utils.barrier(self.ctx)
        return path

    def data_report(self) -> Dict[str, Any]:
        reports = dist_utils.all_gather_objects(self.ctx, self.bad_log.report())
        return {"bad_samples": sum(r["bad_samples"] for r in reports),
                "samples_seen": sum(r["samples_seen"] for r in reports),
                "examples": [e for r in reports for e in r["examples"]][:50],
                "skipped_datasets": reports[0]["skipped_datasets"]}


def train_stage(config: TrainConfig, ctx: Optional[dist_utils.DistContext] = None
                ) -> Dict[str, Any]:
    """Run (or resume) one stage; returns {"step", "epoch", "checkpoint", "last_terms",
    "data_report"} on every rank."""
    from tqdm import tqdm

    ctx = ctx or dist_utils.setup(config.device, config.dist_backend)
    st = _Stage(config, ctx)
    st.resume()
    cfg, main, spe = config, ctx.is_main, st.steps_per_epoch
    net: nn.Module = st.model
    if ctx.distributed:
        net = DistributedDataParallel(st.model, device_ids=[ctx.device] if ctx.device.type == "cuda"
                                      else None, find_unused_parameters=cfg.find_unused_parameters)
    total_steps = cfg.epochs * spe if cfg.max_steps is None else min(cfg.epochs * spe, cfg.max_steps)
    order_path = st.out_dir / "sample_order.jsonl"
    writer = None
    if main:
        st.out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, st.out_dir / "config.yaml")
        _record_launch(st.out_dir, {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv,
            "world_size": ctx.world_size, "backend": ctx.backend, "host": socket.gethostname(),
            "device": str(ctx.device), "precision": st.precision, "micro_batch": st.micro,
            "resumed_from": str(st.resumed) if st.resumed else None,
            "torch": torch.__version__, "pare_ros": pare_ros.__version__,
            "git_commit": _git_commit(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "config": dataclasses.asdict(cfg)})
        if cfg.record_sample_order:
            _truncate_order(order_path, st.step)
        from torch.utils.tensorboard import SummaryWriter      # rank 0 only: a slow import
        writer = SummaryWriter(str(st.out_dir / "tb"), purge_step=st.step if st.resumed else None)
    ckpt_path, terms = st.resumed, {}
    epoch = st.step // spe
    try:
        while st.step < total_steps:
            epoch = st.step // spe
            st.dataset.set_epoch(epoch)
            st.sampler.set_epoch(epoch)
            st.sampler.set_start_step(st.step - epoch * spe)
            pin = cfg.pin_memory if cfg.pin_memory is not None else ctx.device.type == "cuda"
            loader = make_loader(st.dataset, st.sampler, cfg.num_workers, pin, cfg.prefetch_factor)
            batches = iter(loader)
            n = min(spe * (epoch + 1), total_steps) - st.step
            bar = tqdm(total=n, desc=f"epoch {epoch}", leave=False, disable=not main)
            for _ in range(n):
                terms, batch, pred, positions = st.optimizer_step(net, batches)
                st.step += 1
                too_many = st.bad_log.exceeded(cfg.max_bad_sample_fraction)
                if not dist_utils.all_true(ctx, too_many is None):   # all ranks stop together
                    raise RuntimeError(too_many or "too many unreadable samples on another "
                                       "process (see its message)")
                bar.update(1)
                bar.set_postfix(loss=f"{terms['total']:.3g}")
                if cfg.record_sample_order:
                    _write_order(st, ctx, positions, epoch, order_path)
                if st.step % cfg.log_every == 0 or st.step == 1:
                    logged = dist_utils.mean_over_ranks(ctx, terms)
                    bad = dist_utils.mean_over_ranks(ctx, {"b": float(st.bad_log.count)})["b"]
                    if writer is not None:
                        for k, v in logged.items():
                            writer.add_scalar(f"loss/{k}", v, st.step)
                        writer.add_scalar("train/lr", st.scheduler.get_last_lr()[0], st.step)
                        writer.add_scalar("data/bad_samples", bad * ctx.world_size, st.step)
                if writer is not None and (st.step % cfg.image_every == 0 or st.step == 1):
                    _log_images(writer, st, batch, pred)
                if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0:
                    ckpt_path = st.save(epoch)
            bar.close()
            del batches, loader                      # stop this epoch's workers
            if st.step % spe == 0:
                epoch = st.step // spe
            ckpt_path = st.save(epoch)
    finally:
        if writer is not None:
            writer.close()
    report = st.data_report()
    if main and report["bad_samples"] + len(report["skipped_datasets"]):
        print(f"[pare_training] {report['bad_samples']} unreadable samples skipped of "
              f"{report['samples_seen']}, {len(report['skipped_datasets'])} dataset file(s) left "
              f"out: see {st.out_dir / 'data_report.json'}", flush=True)
    return {"step": st.step, "epoch": epoch, "checkpoint": ckpt_path, "last_terms": terms,
            "data_report": report}


def _write_order(st: _Stage, ctx: dist_utils.DistContext, positions: torch.Tensor, epoch: int,
                 path: Path) -> None:
    """Append this step's samples in global order: micro-step a, rank r, micro-batch."""
    every = dist_utils.all_gather_tensor(ctx, positions.to(ctx.device)).cpu()   # [W, A·micro]
    m = st.micro
    order = [int(i) for a in range(st.config.grad_accum_steps) for r in range(ctx.world_size)
             for i in every[r, a * m:(a + 1) * m]]
    if ctx.is_main:
        with path.open("a") as f:
            f.write(json.dumps({"step": st.step, "epoch": epoch, "samples": order}) + "\n")


def _log_images(writer, st: _Stage, batch: Dict[str, Any], pred: Dict[str, torch.Tensor]) -> None:
    from .train import example_images
    with torch.no_grad():
        joints = perspective_projection(
            st.loss_fn.base.body_model(pred["pred_pose"], pred["pred_shape"]).joints49,
            pred["pred_cam_t"])
    for name, im in example_images(batch, pred, joints).items():
        writer.add_image(f"train/{name}", im, st.step, dataformats="HWC")


__all__ = ["train_stage", "build_model", "resolve_precision"]
