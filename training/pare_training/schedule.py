"""Learning-rate schedules as ``torch.optim.lr_scheduler.LambdaLR`` (stepped once per
optimiser step; its state is checkpointed, so a resume continues the curve)."""
from __future__ import annotations

import math

import torch

from .config import TrainConfig


def lr_factor(step: int, config: TrainConfig, steps_per_epoch: int) -> float:
    """Multiplier of ``config.lr`` at optimiser step ``step`` (0-based).

    Linear warm-up over ``warmup_steps``; then ``constant``, ``cosine`` (to ``min_lr_ratio``
    at ``epochs · steps_per_epoch``; ``max_steps`` only stops early, it does not squeeze the
    curve) or ``step`` (× ``lr_gamma`` at each epoch in ``lr_milestones``).
    """
    warm = config.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule == "step":
        epoch = step // steps_per_epoch
        return config.lr_gamma ** sum(epoch >= m for m in config.lr_milestones)
    total = max(config.epochs * steps_per_epoch - warm, 1)
    t = min(max(step - warm, 0) / total, 1.0)
    lo = config.min_lr_ratio
    return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * t))


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, config, steps_per_epoch))
