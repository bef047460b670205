"""Training configuration: :class:`TrainConfig` (one YAML file = one reproducible run).

Every knob of a run is a field here, and the run writes the resolved config back to
``output_dir/config.yaml`` together with ``run_info.json`` (process count, versions, git
commit, command line), so the pair reproduces the run.

Batch semantics: ``batch_size`` is the **global** batch of one optimiser step, whatever the
number of processes: each of the W processes runs ``grad_accum_steps`` micro-batches of
``batch_size / (W · grad_accum_steps)`` samples per step. A 1-process and an N-process run with
the same config therefore see the same samples per step (and resume across process counts).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from .losses import LossWeights

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine", "step")
BATCHNORM_MODES = ("local", "sync", "frozen")
MODELS = ("pare", "tiny")


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
    model: str = "pare"                        # "tiny": a small net with PARE's outputs (tests)
    epochs: int = 1
    max_steps: Optional[int] = None            # stop after this many optimiser steps in total
    samples_per_epoch: Optional[int] = None    # default: the longest dataset
    batch_size: int = 64                       # global batch per optimiser step (all processes)
    grad_accum_steps: int = 1                  # micro-batches per step and process
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_schedule: str = "constant"              # constant | cosine | step (over epochs·steps)
    warmup_steps: int = 0                      # linear warm-up from 0
    lr_milestones: List[int] = field(default_factory=list)   # epochs, for "step"
    lr_gamma: float = 0.1                      # factor at each milestone ("step")
    min_lr_ratio: float = 0.0                  # cosine floor, × lr
    loss_weights: Dict[str, float] = field(default_factory=dict)   # LossWeights overrides
    part_supervision: bool = True              # stage 1 on, stage 2 off (§10.2)
    label_size: int = 224                      # part-label render resolution (56 is cheaper)
    augment: bool = True
    num_workers: int = 0                       # DataLoader worker processes per training process
    pin_memory: Optional[bool] = None          # None: on for CUDA
    prefetch_factor: int = 2                   # batches per worker in flight
    device: str = "cpu"                        # "cuda": process k uses cuda:LOCAL_RANK
    precision: str = "auto"                    # auto: bf16 on GPUs that support it, else fp16
                                               # (+ GradScaler); fp32 on CPU
    batchnorm: str = "local"                   # local | sync (SyncBatchNorm, GPU) | frozen (eval)
    dist_backend: str = "auto"                 # auto: nccl on CUDA, gloo on CPU
    find_unused_parameters: bool = False       # DDP option
    init_checkpoint: Optional[str] = None      # e.g. stage 1 result for stage 2
    init_cam_scale: float = 0.9                # pred_cam scale bias when training from scratch
    resume: bool = True
    checkpoint_every: Optional[int] = None     # steps; always at each epoch end and at the end
    log_every: int = 50
    image_every: int = 500
    record_sample_order: bool = False          # output_dir/sample_order.jsonl: samples per step
    skip_unreadable_datasets: bool = True      # a corrupt/truncated .npz is reported and left out
    max_bad_sample_fraction: float = 0.01      # abort when more samples than this are unreadable
    seed: int = 0
    stages: List[Dict[str, Any]] = field(default_factory=list)  # recipe: per-stage overrides

    def __post_init__(self) -> None:
        self.datasets = [d if isinstance(d, DatasetSpec) else DatasetSpec(**d)
                         for d in self.datasets]
        unknown = set(self.loss_weights) - {f.name for f in dataclasses.fields(LossWeights)}
        if unknown:
            raise ValueError(f"unknown loss weight(s) {sorted(unknown)}")
        if not self.datasets:
            raise ValueError("at least one dataset is needed")
        for name, value, allowed in (("precision", self.precision, PRECISIONS),
                                     ("lr_schedule", self.lr_schedule, LR_SCHEDULES),
                                     ("batchnorm", self.batchnorm, BATCHNORM_MODES),
                                     ("model", self.model, MODELS)):
            if value not in allowed:
                raise ValueError(f"{name}: {value!r} is not one of {allowed}")
        if self.batch_size < 1 or self.grad_accum_steps < 1:
            raise ValueError("batch_size and grad_accum_steps must be >= 1")
        fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"stages"}
        for k, stage in enumerate(self.stages):
            bad = set(stage) - fields - {"name"}
            if bad:
                raise ValueError(f"stages[{k}]: unknown key(s) {sorted(bad)}")

    def micro_batch(self, world_size: int) -> int:
        """Samples per forward pass in each process; ValueError unless it divides evenly."""
        per = world_size * self.grad_accum_steps
        if self.batch_size % per:
            raise ValueError(
                f"batch_size {self.batch_size} (global, per optimiser step) is not divisible by "
                f"{world_size} processes × grad_accum_steps {self.grad_accum_steps}; choose a "
                f"batch_size that is a multiple of {per}")
        return self.batch_size // per


def load_config(path: str | Path) -> TrainConfig:
    """YAML (safe_load) mapping of :class:`TrainConfig` fields → TrainConfig."""
    import yaml
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of TrainConfig fields")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    if "amp" in data:
        raise ValueError(f"{path}: 'amp' was replaced by 'precision' (auto | fp32 | bf16 | fp16)")
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; valid: {sorted(names)}")
    return TrainConfig(**data)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write ``config`` as YAML that :func:`load_config` reads back to an equal config."""
    import yaml
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
