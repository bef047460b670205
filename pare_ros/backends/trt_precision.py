"""How an FP16 TensorRT engine gets its half precision, per TensorRT major version.

* TensorRT 10 ("weak typing"): the builder flag ``BuilderFlag.FP16`` lets TensorRT pick FP16
  kernels layer by layer; the ONNX model stays float32.
* TensorRT 11 removed every precision flag (and ``IBuilder.platform_has_fast_fp16``): networks
  are strongly typed, so the *ONNX model* must carry the half precision. NVIDIA's documented
  route is ModelOpt AutoCast, which converts the float32 model to mixed FP16/FP32 (keeping
  overflow-prone nodes in FP32) with float32 inputs/outputs. :func:`autocast_fp16_onnx` does
  that once per source model and keeps the result next to the engine.

ModelOpt is optional (``pip install "nvidia-modelopt[onnx]"``): only TensorRT ≥ 11 FP16 builds
need it, and its absence is an :class:`FP16ConversionError` that says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..model_files import sha256_file

WEAK_TYPING = "builder flag FP16 (TensorRT 10 weak typing)"
STRONG_TYPING = "ModelOpt AutoCast mixed FP16/FP32 ONNX (TensorRT 11 strong typing)"
SOURCE_KEY = "pare_ros.autocast_source_sha256"

# (float32 ONNX path, output directory) -> mixed-precision ONNX path
Fp16Converter = Callable[[Path, Path], Path]


class FP16ConversionError(RuntimeError):
    """The ONNX model could not be converted to mixed precision for a strongly typed build."""


def has_fp16_builder_flag(trt) -> bool:
    """True where FP16 is requested with ``BuilderFlag.FP16`` (TensorRT ≤ 10)."""
    return hasattr(trt.BuilderFlag, "FP16")


def fp16_method(tensorrt_version: str) -> str:
    """How a TensorRT of this version gets FP16 (recorded in the engine's sidecar)."""
    return WEAK_TYPING if int(str(tensorrt_version).split(".")[0]) <= 10 else STRONG_TYPING


def platform_has_fast_fp16(builder) -> bool:
    """TensorRT ≤ 10 can tell; 11 removed the query (every supported GPU has fast FP16)."""
    return bool(getattr(builder, "platform_has_fast_fp16", True))


def autocast_fp16_onnx(onnx_path: Path, out_dir: Path) -> Path:
    """Mixed FP16/FP32 copy of ``onnx_path`` (float32 I/O) made by ModelOpt AutoCast, written
    to ``out_dir/<stem>.fp16-autocast.onnx`` and reused while the source's sha256 matches."""
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    target = out_dir / f"{onnx_path.stem}.fp16-autocast.onnx"
    source_sha = sha256_file(onnx_path)
    import onnx

    if target.is_file():
        recorded = {p.key: p.value for p in onnx.load(str(target), load_external_data=False).metadata_props}
        if recorded.get(SOURCE_KEY) == source_sha:
            return target
    try:
        from modelopt.onnx.autocast import convert_to_mixed_precision
    except ImportError as exc:
        raise FP16ConversionError(
            "TensorRT ≥ 11 builds FP16 engines only from a mixed-precision ONNX model, made with "
            "NVIDIA ModelOpt AutoCast, which is not installed: pip install \"nvidia-modelopt[onnx]\" "
            f"(or build with --precision fp32). ({exc})") from exc
    model = convert_to_mixed_precision(onnx_path=str(onnx_path), low_precision_type="fp16",
                                       keep_io_types=True)
    entry = model.metadata_props.add()
    entry.key, entry.value = SOURCE_KEY, source_sha
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return target
