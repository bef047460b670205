"""Inference backends for the PARE network (see docs/backends.md).

Every backend is a callable ``images [N,3,224,224] float32 → dict`` with at least
``pred_pose``, ``pred_shape``, ``pred_cam`` and ``pred_segm_mask`` (the contract in
:mod:`pare_ros.backends.contract`), usable as ``BodyEstimator(backend=...)``.

* :mod:`.onnx_export` — PARE → ONNX (opset 17, dynamic batch).
* :mod:`.onnxruntime_backend` — :class:`OnnxRuntimeBackend`.
* :mod:`.torch_backend` — :class:`TorchBackend` (fp16/channels-last/CUDA graphs on GPU).
* :mod:`.tensorrt_engine` — engine building, :class:`EngineCache`, :class:`TensorRTBackend`.
* :mod:`.gpu_preprocess` — batched crops with ``grid_sample`` on the image's device.
* :mod:`.select` — :func:`select_backend`.

Submodules are imported lazily so that importing this package needs neither onnx,
onnxruntime nor TensorRT.
"""
from .contract import INPUT_NAME, OUTPUT_NAMES, OUTPUT_SHAPES, ContractError

__all__ = ["INPUT_NAME", "OUTPUT_NAMES", "OUTPUT_SHAPES", "ContractError"]
