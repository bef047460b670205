"""PyTorch inference backend with the usual GPU speed-ups.

``TorchBackend(model, device)`` is a ``backend`` for :class:`pare_ros.estimator.BodyEstimator`.
On CPU in fp32 it calls the model under ``torch.inference_mode`` and nothing else, so its
results are bit-identical to the plain model. On CUDA it can add

* ``precision="fp16"``: ``torch.autocast(float16)`` (outputs returned as float32),
* ``channels_last``: NHWC memory format for the convolutions,
* ``cuda_graphs``: one captured CUDA graph per batch bucket (default 1, 2, 4, 8); a batch of
  N people is zero-padded to the next bucket, replayed, and the first N rows returned. Batches
  larger than the biggest bucket run eagerly.

``max_batch`` (any device) runs larger batches in slices of that many people.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from .contract import OUTPUT_NAMES, run_in_chunks


class TorchBackend:
    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", precision: str = "fp32",
                 channels_last: bool = False, cuda_graphs: bool = False,
                 batch_buckets: Sequence[int] = (1, 2, 4, 8), max_batch: Optional[int] = None) -> None:
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be 'fp32' or 'fp16', not {precision!r}")
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        if (precision == "fp16" or cuda_graphs) and not cuda:
            raise ValueError(f"precision={precision!r}/cuda_graphs={cuda_graphs} need a CUDA device, "
                             f"got {self.device}")
        self.precision = precision
        self.channels_last = channels_last
        self.cuda_graphs = cuda_graphs
        self.buckets = tuple(sorted(set(int(b) for b in batch_buckets)))
        if cuda_graphs and (not self.buckets or self.buckets[0] < 1):
            raise ValueError(f"invalid batch buckets {batch_buckets!r}")
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._graphs: Dict[int, tuple] = {}
        self.max_batch = max_batch
        self.name = (f"pytorch {self.device} {precision}" + (" channels-last" if channels_last else "")
                     + (f" cuda-graphs{list(self.buckets)}" if cuda_graphs else ""))

    def _autocast(self):
        if self.precision == "fp16":
            # No cast cache: graph capture must not keep autocast's cached fp16 weights (freed
            # when the context exits; PyTorch's make_graphed_callables refuses it), and each
            # weight is used once per forward, so the cache saves nothing here.
            return torch.autocast(device_type="cuda", dtype=torch.float16, cache_enabled=False)
        return contextlib.nullcontext()

    def _forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self.model(images)
        if self.device.type == "cpu" and self.precision == "fp32":
            return {name: out[name] for name in OUTPUT_NAMES}
        return {name: out[name].float() for name in OUTPUT_NAMES}

    def _bucket(self, n: int) -> Optional[int]:
        return next((b for b in self.buckets if b >= n), None)

    def _graph(self, bucket: int):
        if bucket not in self._graphs:
            static_in = torch.zeros(bucket, 3, 224, 224, device=self.device)
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):      # warm-up on a side stream, as the docs require
                for _ in range(3):
                    self._forward(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self._graphs[bucket] = (graph, static_in, static_out)
        return self._graphs[bucket]

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        images = images.to(self.device, torch.float32, non_blocking=True)
        return run_in_chunks(self._run, images, self.max_batch)

    def _run(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        n = images.shape[0]
        bucket = self._bucket(n) if self.cuda_graphs else None
        if bucket is None or n == 0:
            return self._forward(images)
        graph, static_in, static_out = self._graph(bucket)
        static_in[:n].copy_(images)
        if n < bucket:
            static_in[n:].zero_()
        graph.replay()
        # Clone: the static outputs are overwritten by the next replay.
        return {name: static_out[name][:n].clone() for name in OUTPUT_NAMES}
