"""``pare-ros`` command line: ``infer`` (image → JSON + overlay), SMPL file tools, and more."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

log = logging.getLogger("pare_ros")


def _infer(args: argparse.Namespace) -> int:
    from .inference_cli import run_infer

    return run_infer(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pare-ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    infer = sub.add_parser("infer", help="estimate SMPL bodies in one image",
                           description="Estimate SMPL bodies in IMAGE and write results.json, "
                           "results.npz and overlay.png to --out.")
    infer.add_argument("image", help="image file, or 'skimage:<name>' for a photo that "
                       "scikit-image ships (e.g. skimage:astronaut)")
    infer.add_argument("--boxes", default=None,
                       help="person boxes 'x0,y0,x1,y1[;x0,y0,x1,y1...]' in pixels "
                       "(default: the whole image as one person)")
    infer.add_argument("--checkpoint", type=Path, default=None,
                       help="PARE .ckpt or mmhuman3d .pth (default: the first official "
                       "checkpoint found in the model directory)")
    infer.add_argument("--config", type=Path, default=None,
                       help="PARE YAML (default: the checkpoint's companion *_config.yaml)")
    infer.add_argument("--model-dir", type=Path, default=None,
                       help="model directory (default: $PARE_ROS_MODEL_DIR, else "
                       "~/.local/share/pare_ros/model; model/README.md)")
    infer.add_argument("--smpl-dir", type=Path, default=None,
                       help="directory with smpl/SMPL_*.pkl|npz and the regressors "
                       "(default: the model directory)")
    infer.add_argument("--gender", default="neutral", choices=("neutral", "male", "female"))
    infer.add_argument("--intrinsics", default=None,
                       help="fx,fy,cx,cy in pixels (default: 60° horizontal FOV, centred)")
    infer.add_argument("--box-scale", type=float, default=1.0,
                       help="crop side = box_scale × max(box w, h) (PARE demo: 1.0)")
    infer.add_argument("--device", default="cpu")
    infer.add_argument("--allow-untrained", action="store_true",
                       help="when official files are missing, run with untrained weights and the "
                       "synthetic body model instead of failing (demo/testing only)")
    infer.add_argument("--out", type=Path, required=True, help="output directory")
    infer.set_defaults(func=_infer)

    try:
        from .body_model.cli import add_subcommands as add_body_model_commands
    except ImportError:  # pragma: no cover - only while the package is partially installed
        add_body_model_commands = None
    if add_body_model_commands is not None:
        add_body_model_commands(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(levelname)s] %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        # Missing model files, bad checkpoints and bad inputs: one clear line, no traceback.
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
