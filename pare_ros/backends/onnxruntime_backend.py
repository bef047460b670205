"""ONNX Runtime inference backend (CPU by default).

``OnnxRuntimeBackend(path)`` is a drop-in ``backend`` for
:class:`pare_ros.estimator.BodyEstimator`: torch tensor [N,3,224,224] in, dict of torch tensors
out. The model's input/output names and shapes are checked against the backend contract when
it is loaded, so a wrong file fails at start-up with a message naming what differs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .contract import INPUT_NAME, INPUT_SHAPE, OUTPUT_NAMES, check_io, run_in_chunks


class OnnxRuntimeBackend:
    """Run an exported PARE ONNX model with ONNX Runtime.

    Args:
        onnx_path: file written by :mod:`pare_ros.backends.onnx_export`.
        providers: ONNX Runtime execution providers (default ``["CPUExecutionProvider"]``).
        intra_op_threads: threads per operator (default: ONNX Runtime's choice, all cores).
        max_batch: run larger batches in slices of this many people (None: one run). On CPU the
            cost per person rises again past a few people (see ``select.CPU_MAX_BATCH``).
    """

    def __init__(self, onnx_path: str | Path, providers: Optional[Sequence[str]] = None,
                 intra_op_threads: Optional[int] = None, max_batch: Optional[int] = None) -> None:
        import onnxruntime as ort

        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"ONNX model not found: {self.path}; export it with "
                f"`python -m pare_ros.backends.onnx_export --out {self.path}`")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads must not spin between runs: on a few cores they would steal the
        # CPU from SMPL and the ROS executor (measured: SMPL + smoothing p95 42 → 8 ms, 4 people).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if intra_op_threads:
            options.intra_op_num_threads = int(intra_op_threads)
        self.providers = list(providers or ["CPUExecutionProvider"])
        self.session = ort.InferenceSession(str(self.path), sess_options=options,
                                            providers=self.providers)
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        check_io(str(self.path), inputs, outputs)
        self.output_names = list(OUTPUT_NAMES)
        self.max_batch = max_batch
        self.name = f"onnxruntime ({', '.join(self.session.get_providers())})"

    def __call__(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        if images.ndim != 4 or tuple(images.shape[1:]) != INPUT_SHAPE:
            raise ValueError(f"expected images [N,{','.join(map(str, INPUT_SHAPE))}], got {list(images.shape)}")
        return run_in_chunks(self._run, images, self.max_batch)

    def _run(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        array = np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())
        results = self.session.run(self.output_names, {INPUT_NAME: array})
        return {name: torch.from_numpy(value) for name, value in zip(self.output_names, results)}
