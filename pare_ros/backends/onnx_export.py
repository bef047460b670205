"""Export PARE to ONNX.

The exported graph has one input ``images`` float32 [N,3,224,224] and the four outputs of the
backend contract (``pred_pose``, ``pred_shape``, ``pred_cam``, ``pred_segm_mask``) with a
dynamic batch axis ``N``. Opset 17 (≥ 11 is needed for ``Resize`` with
``coordinate_transformation_mode=align_corners``, which HRNet's bilinear upsample blocks use,
reference spec §12 item 8).

Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``. The dynamo exporter
(the default since torch 2.9) needs ``onnxscript``, which is not among this project's pinned
dependencies; the TorchScript exporter is deterministic, needs nothing extra and handles every
op PARE uses (einsum, bmm, softmax, bilinear/nearest Resize).

The model's ``metadata_props`` record the source checkpoint path and sha256, the exporter,
torch version and opset, so that engines built from the file can be traced back.

Command line::

    python -m pare_ros.backends.onnx_export --checkpoint model/checkpoints/pare_w_3dpw_checkpoint.ckpt \
        --out model/onnx/pare_hrnet_w32.onnx
    python -m pare_ros.backends.onnx_export --allow-untrained --out /tmp/pare_untrained.onnx
"""
from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .contract import INPUT_NAME, OUTPUT_NAMES, OUTPUT_SHAPES
from ..model_files import sha256_file

OPSET = 17
DEFAULT_OUT = Path("model/onnx/pare_hrnet_w32.onnx")


class ContractWrapper(nn.Module):
    """PARE → tuple of the contract outputs in :data:`OUTPUT_NAMES` order (ONNX needs a tuple)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.model(images)
        return tuple(out[name] for name in OUTPUT_NAMES)


def _pin_output_shapes(proto) -> None:
    """Write the contract shapes into the graph outputs: the TorchScript exporter leaves some
    per-item dims symbolic (e.g. ``pred_pose`` dim 1 after a Concat); only N may be dynamic."""
    for output in proto.graph.output:
        if output.name not in OUTPUT_SHAPES:
            continue
        dims = output.type.tensor_type.shape.dim
        del dims[:]
        dims.add().dim_param = "N"
        for size in OUTPUT_SHAPES[output.name]:
            dims.add().dim_value = size


def export_onnx(model: nn.Module, out_path: str | Path, metadata: Optional[Dict[str, str]] = None,
                opset: int = OPSET, example_batch: int = 2) -> Path:
    """Export ``model`` (a PARE module, CPU, eval) to ``out_path`` and check the result.

    Returns the written path. Raises ``onnx.checker.ValidationError`` if the graph is invalid.
    """
    import onnx

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ContractWrapper(model).eval().cpu()
    example = torch.zeros(example_batch, 3, 224, 224)
    dynamic = {INPUT_NAME: {0: "N"}, **{name: {0: "N"} for name in OUTPUT_NAMES}}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # TorchScript exporter deprecation notice
        torch.onnx.export(wrapper, (example,), buffer, input_names=[INPUT_NAME],
                          output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    _pin_output_shapes(proto)
    props = {"exporter": "torch.onnx.export(dynamo=False)", "torch_version": torch.__version__,
             "opset": str(opset), "producer": "pare_ros.backends.onnx_export"}
    props.update(metadata or {})
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto, full_check=True)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(out_path)
    return out_path


def read_metadata(onnx_path: str | Path) -> Dict[str, str]:
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pare_ros.backends.onnx_export",
                                     description="Export PARE (HRNet-W32) to ONNX.")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="PARE .ckpt or mmhuman3d .pth (default: first official one in model/)")
    parser.add_argument("--config", type=Path, default=None, help="PARE YAML (default: companion)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--opset", type=int, default=OPSET)
    parser.add_argument("--allow-untrained", action="store_true",
                        help="export seeded untrained weights when no checkpoint is found (testing only)")
    args = parser.parse_args(argv)

    from ..assets import find_checkpoint, untrained_network
    from .. import model_files
    from ..network import load_network

    checkpoint = args.checkpoint or find_checkpoint(model_files.default_model_dir())
    if checkpoint is not None:
        model = load_network(checkpoint, device="cpu", config_path=args.config)
        meta = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint)}
    elif args.allow_untrained:
        print("WARNING: no checkpoint found; exporting UNTRAINED weights (results are meaningless)",
              file=sys.stderr)
        model = untrained_network()
        meta = {"checkpoint": "UNTRAINED (pare_ros.assets.untrained_network seed 0)",
                "checkpoint_sha256": ""}
    else:
        from ..assets import CHECKPOINT_KEYS

        model_files.require(CHECKPOINT_KEYS[0], model_files.default_model_dir())
        return 2
    path = export_onnx(model, args.out, meta, opset=args.opset)
    print(f"wrote {path} (opset {args.opset}, sha256 {sha256_file(path)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
