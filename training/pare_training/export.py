"""Checkpoint → ONNX → TensorRT engines, verified: the deployment step of the training package.

    python -m pare_training.export --checkpoint runs/real/train/checkpoints/step_020000.pth \
        --out-dir model/onnx --precision fp16 fp32 --max-batch 8

1. load the checkpoint (official PARE ``.ckpt``, mmhuman3d ``.pth`` or one written by
   :mod:`pare_training.train`) with :func:`pare_ros.network.load_network` (strict, safe loading);
2. export ONNX (opset 17, dynamic batch, ``onnx.checker``) to ``<out-dir>/<name>.onnx``;
3. compare ONNX Runtime with PyTorch on the same batch: max abs difference per output; exit 1
   when pose, shape or camera differ by more than ``--tolerance``;
4. per precision, build the TensorRT engine where the node looks for it
   (``<name>.<precision>.b<max_batch>.engine`` + ``.json`` sidecar) when TensorRT and a CUDA GPU
   are here; otherwise report the command to run on the robot.

The report (JSON) is printed and written to ``<out-dir>/<name>.export.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from pare_ros.backends.contract import OUTPUT_NAMES
from pare_ros.model_files import sha256_file

from .pipeline import build_trt

# pred_segm_mask logits carry float32 rounding amplified through HRNet (≈ 4e-4 between two
# correct float32 implementations; docs/pare-implementation.md): checked, not gated.
GATED_OUTPUTS = ("pred_pose", "pred_shape", "pred_cam")


def compare_onnxruntime(model: torch.nn.Module, onnx_path: Path, batch: int = 2, seed: int = 0) -> Dict[str, float]:
    """Max abs difference ONNX Runtime vs PyTorch per output on ``batch`` random crops."""
    from pare_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    images = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = model.eval()(images)
    got = OnnxRuntimeBackend(onnx_path)(images)
    return {name: float((got[name] - expected[name].float()).abs().max()) for name in OUTPUT_NAMES}


def export(checkpoint: Optional[Path], out_dir: Path, name: str, precisions: Sequence[str] = ("fp16",),
           max_batch: int = 8, config: Optional[Path] = None, tolerance: float = 1e-4) -> Dict[str, Any]:
    from pare_ros.assets import untrained_network
    from pare_ros.backends.onnx_export import export_onnx
    from pare_ros.backends.select import default_engine_path
    from pare_ros.network import load_network

    if checkpoint is None:
        model = untrained_network()
        meta = {"checkpoint": "UNTRAINED (pare_ros.assets.untrained_network seed 0)", "checkpoint_sha256": ""}
    else:
        model = load_network(checkpoint, device="cpu", config_path=config)
        meta = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint)}
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, out_dir / f"{name}.onnx", meta)
    differences = compare_onnxruntime(model, onnx_path)
    report: Dict[str, Any] = {
        "checkpoint": meta["checkpoint"], "onnx": str(onnx_path), "onnx_sha256": sha256_file(onnx_path),
        "onnxruntime_vs_pytorch_max_abs": differences, "tolerance": tolerance,
        "onnxruntime_ok": all(differences[k] <= tolerance for k in GATED_OUTPUTS), "engines": [],
    }
    for precision in precisions:
        engine = build_trt(onnx_path, default_engine_path(onnx_path, precision, max_batch), precision,
                           max_batch=max_batch)
        report["engines"].append(engine)
    (out_dir / f"{name}.export.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pare_training.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="PARE .ckpt / mmhuman3d .pth / trained .pth")
    parser.add_argument("--config", type=Path, default=None, help="PARE YAML (default: companion or embedded)")
    parser.add_argument("--out-dir", type=Path, default=Path("model/onnx"))
    parser.add_argument("--name", default=None, help="file stem (default: the checkpoint's stem)")
    parser.add_argument("--precision", nargs="+", choices=("fp16", "fp32"), default=["fp16"])
    parser.add_argument("--max-batch", type=int, default=8, help="engine profile: batch 1..max (people)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="max ONNX Runtime vs PyTorch difference on pose/shape/camera")
    parser.add_argument("--allow-untrained", action="store_true",
                        help="export seeded untrained weights when no --checkpoint is given (testing only)")
    args = parser.parse_args(argv)
    if args.checkpoint is None and not args.allow_untrained:
        parser.error("--checkpoint is required (or --allow-untrained for a plumbing test)")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        print(f"error: checkpoint not found: {args.checkpoint}", file=sys.stderr)
        return 2
    name = args.name or (args.checkpoint.stem if args.checkpoint else "pare_untrained")
    report = export(args.checkpoint, args.out_dir, name, args.precision, args.max_batch, args.config,
                    args.tolerance)
    print(json.dumps(report, indent=2))
    for engine in report["engines"]:
        if not engine["built"]:
            print(f"TensorRT engine not built ({engine['reason']}); on the robot run:\n  {engine['command']}",
                  file=sys.stderr)
    if not report["onnxruntime_ok"]:
        print("error: ONNX Runtime differs from PyTorch beyond the tolerance", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
