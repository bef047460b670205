"""One optimisation step of PARE (Adam, spec §10.1: LR 1e-4, weight decay 0)."""
from __future__ import annotations

from typing import Dict, Mapping

import torch


def make_optimizer(model: torch.nn.Module, lr: float = 1e-4,
                   weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam over the trainable parameters (PARE's code defaults)."""
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr,
                            weight_decay=weight_decay)


def train_step(model: torch.nn.Module, loss_fn: torch.nn.Module, optimizer: torch.optim.Optimizer,
               batch: Mapping[str, torch.Tensor]) -> Dict[str, float]:
    """Forward ``batch['img']`` [N,3,224,224], compute the loss, step the optimiser.

    Returns the loss terms (floats, before the update) including ``total``.
    Raises FloatingPointError on a non-finite loss (rather than corrupting the weights).
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    pred = model(batch["img"])
    total, terms = loss_fn(pred, batch)
    if not torch.isfinite(total):
        raise FloatingPointError(f"non-finite loss: { {k: float(v) for k, v in terms.items()} }")
    total.backward()
    optimizer.step()
    return {k: float(v) for k, v in terms.items()}
