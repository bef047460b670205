"""torch.distributed plumbing for ``torchrun`` launches (one process per GPU, or per CPU slot).

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``;
:func:`setup` reads them (env:// rendezvous), picks NCCL for CUDA and Gloo for CPU, and binds
process k of a node to ``cuda:LOCAL_RANK``. Without those variables (``python -m
pare_training.train``) or with ``WORLD_SIZE=1`` no process group is created and everything
below is a no-op: a single-process run stays the default.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Dict, List

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: str = ""                     # "" when no process group exists

    @property
    def is_main(self) -> bool:
        """Global rank 0: the one process that logs, writes TensorBoard and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "cpu", backend: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Join (or reuse) the process group described by torchrun's environment variables.

    Args:
        device: "cpu" or "cuda" (a "cuda:k" index is replaced by LOCAL_RANK under torchrun).
        backend: "auto" (nccl on CUDA, gloo on CPU), or a torch.distributed backend name.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device: cuda requested but torch.cuda.is_available() is False "
                               "(no GPU or a CPU-only torch); set device: cpu")
        if world > 1 or dev.index is None:
            if local_rank >= torch.cuda.device_count():
                raise RuntimeError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} "
                                   "GPUs: --nproc_per_node must not exceed the GPUs per node")
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world <= 1:
        return DistContext(device=dev)
    if backend == "auto":
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kwargs: Dict[str, Any] = {"backend": backend,
                                  "timeout": datetime.timedelta(seconds=timeout_s)}
        if dev.type == "cuda":
            kwargs["device_id"] = dev          # lets NCCL bind eagerly (documented torch API)
        dist.init_process_group(**kwargs)
    return DistContext(rank=dist.get_rank(), local_rank=local_rank,
                       world_size=dist.get_world_size(), device=dev,
                       backend=dist.get_backend())


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (small picklable values between our own processes)."""
    if not ctx.distributed:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_objects(ctx: DistContext, obj: Any) -> List[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not ctx.distributed:
        return [obj]
    out: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def all_gather_tensor(ctx: DistContext, t: torch.Tensor) -> torch.Tensor:
    """[world_size, *t.shape] stack of every rank's equally shaped ``t``."""
    if not ctx.distributed:
        return t[None]
    out = [torch.empty_like(t) for _ in range(ctx.world_size)]
    dist.all_gather(out, t.contiguous())
    return torch.stack(out)


def mean_over_ranks(ctx: DistContext, values: Dict[str, float]) -> Dict[str, float]:
    """Average of float ``values`` over the ranks (same keys on every rank)."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist())}


def all_true(ctx: DistContext, flag: bool) -> bool:
    """True when ``flag`` holds on every rank (so all ranks take the same branch, no hang)."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([0 if flag else 1], dtype=torch.int32, device=ctx.device)
    dist.all_reduce(t)
    return int(t.item()) == 0
