"""Choosing the fastest available inference backend.

Order for ``kind="auto"``:

1. TensorRT (CUDA GPU + ``tensorrt`` + an exported ONNX model): the engine comes from
   :class:`~pare_ros.backends.tensorrt_engine.EngineCache` (reused when its sidecar matches,
   built or refused according to ``engine_policy``).
2. PyTorch on CUDA: fp16 autocast, channels-last and CUDA graphs per batch bucket.
3. CPU: ONNX Runtime when an ONNX model is available and ``onnxruntime`` imports, else PyTorch.

Why ONNX Runtime before PyTorch on CPU: measured on this project's 2-core development machine
(torch 2.13 CPU with 2 threads, onnxruntime 1.31 with its default threads, PARE HRNet-W32
fp32, random weights) the network forward per person takes, p50 of 5 after warm-up:

    batch 1: ONNX Runtime 172 ms vs PyTorch 259 ms   (1.5x)
    batch 4: ONNX Runtime 169 ms vs PyTorch 228 ms   (1.35x)

and the whole frame pipeline follows (scripts/benchmark.py, 100 frames; docs/benchmarks.md).
Outputs agree to < 1e-4 (part logits < 1e-3; test/test_backends.py).

:func:`select_backend` returns the backend and a one-line reason for the start-up log that
also says why each faster option was skipped.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import torch
from torch import nn

KINDS = ("auto", "tensorrt", "torch-cuda", "onnxruntime", "torch-cpu")

# CPU backends run the people of a frame in slices of at most this many. Per-person network
# time on the 2-core development machine (scripts/benchmark.py sweep, p50 of 5):
#   batch        1    2    4    8
#   PyTorch    259  230  228  238 ms
#   ONNX RT    172  170  169  178 ms
# i.e. batching helps up to ~4 people and hurts beyond (activations outgrow the caches).
CPU_MAX_BATCH = 4


def cuda_available() -> bool:
    return torch.cuda.is_available()


def tensorrt_available() -> Tuple[bool, str]:
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return False, f"tensorrt not installed ({exc})"
    return True, ""


def onnxruntime_available() -> Tuple[bool, str]:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return False, f"onnxruntime not installed ({exc})"
    return True, ""


def default_engine_path(onnx_path: str | Path, precision: str, max_batch: int) -> Path:
    """Where the node looks for the engine of ``onnx_path``: next to it,
    ``<stem>.<precision>.b<max_batch>.engine``."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(f"{onnx_path.stem}.{precision}.b{max_batch}.engine")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why."""


def select_backend(kind: str = "auto", model: Optional[nn.Module] = None,
                   onnx_path: str | Path | None = None, engine_path: str | Path | None = None,
                   precision: str = "fp16", max_batch: int = 8, engine_policy: str = "never",
                   cuda_graphs: bool = True, intra_op_threads: Optional[int] = None):
    """Return ``(backend, reason)``.

    Args:
        kind: one of :data:`KINDS`; anything but ``auto`` raises :class:`BackendUnavailable`
            when that backend cannot run.
        model: the PARE module (for the PyTorch backends).
        onnx_path: exported model (for ONNX Runtime and TensorRT).
        engine_path: TensorRT engine (default: next to the ONNX file,
            ``<stem>.<precision>.b<max_batch>.engine``).
        precision: GPU precision ("fp16" or "fp32"); CPU backends always run fp32.
        engine_policy: "never" (refuse a missing/stale engine with the build command),
            "auto" (build it; minutes on first start) or "force" (rebuild at every start).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown backend kind {kind!r}; choose from {', '.join(KINDS)}")
    skipped: List[str] = []
    onnx_ok = onnx_path is not None and Path(onnx_path).is_file()

    def unavailable(name: str, why: str):
        if kind != "auto":
            raise BackendUnavailable(f"backend {name} unavailable: {why}")
        skipped.append(f"{name}: {why}")

    def reason(text: str) -> str:
        return text + (f" (skipped {'; '.join(skipped)})" if skipped else "")

    if kind in ("auto", "tensorrt"):
        ok, why = tensorrt_available()
        if not ok:
            unavailable("tensorrt", why)
        elif not cuda_available():
            unavailable("tensorrt", "no CUDA device")
        elif not onnx_ok:
            unavailable("tensorrt", f"no ONNX model at {onnx_path} (export with "
                                    "`python -m pare_ros.backends.onnx_export`)")
        else:
            from .tensorrt_engine import BuildSpec, EngineCache, TensorRTBackend

            onnx = Path(onnx_path)
            engine = Path(engine_path) if engine_path else default_engine_path(onnx, precision, max_batch)
            try:
                cache = EngineCache(onnx, engine, BuildSpec(precision, max_batch), policy=engine_policy)
                backend = TensorRTBackend(cache.ensure())
                return backend, reason(f"TensorRT {precision} engine {engine} ({cache.last_action}: "
                                       f"{cache.last_reason})")
            except Exception as exc:   # noqa: BLE001 - any failure falls back in auto mode
                unavailable("tensorrt", str(exc))

    if kind in ("auto", "torch-cuda"):
        if not cuda_available():
            unavailable("torch-cuda", "no CUDA device")
        elif model is None:
            unavailable("torch-cuda", "no PyTorch model given")
        else:
            from .torch_backend import TorchBackend

            backend = TorchBackend(model, "cuda", precision=precision, channels_last=True,
                                   cuda_graphs=cuda_graphs)
            return backend, reason(f"PyTorch CUDA ({torch.cuda.get_device_name()}), {backend.name}")

    if kind in ("auto", "onnxruntime"):
        ok, why = onnxruntime_available()
        if not ok:
            unavailable("onnxruntime", why)
        elif not onnx_ok:
            unavailable("onnxruntime", f"no ONNX model at {onnx_path} (export with "
                                       "`python -m pare_ros.backends.onnx_export`)")
        else:
            from .onnxruntime_backend import OnnxRuntimeBackend

            backend = OnnxRuntimeBackend(onnx_path, intra_op_threads=intra_op_threads,
                                         max_batch=min(max_batch, CPU_MAX_BATCH))
            return backend, reason(f"ONNX Runtime CPU ({onnx_path}; batches of ≤ {backend.max_batch}; "
                                   "1.35-1.5x faster than PyTorch on this project's CPU)")

    if kind in ("auto", "torch-cpu"):
        if model is None:
            unavailable("torch-cpu", "no PyTorch model given")
        else:
            from .torch_backend import TorchBackend

            return (TorchBackend(model, "cpu", max_batch=min(max_batch, CPU_MAX_BATCH)),
                    reason(f"PyTorch CPU fp32 (batches of ≤ {min(max_batch, CPU_MAX_BATCH)})"))

    raise BackendUnavailable("no inference backend available: " + "; ".join(skipped))
