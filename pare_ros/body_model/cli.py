"""``pare-ros convert-smpl`` and ``pare-ros make-synthetic-smpl`` subcommands."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("pare_ros")


def add_subcommands(subparsers) -> None:
    """Register the body-model subcommands on an ``argparse`` subparsers object."""
    convert = subparsers.add_parser(
        "convert-smpl", help="convert an official SMPL .pkl to .npz (chumpy not needed)",
        description="Read an official SMPL .pkl without chumpy and without running pickled code, "
        "check it, and write the arrays the body model needs to an .npz.")
    convert.add_argument("src", type=Path, help="SMPL .pkl, e.g. basicModel_neutral_lbs_10_207_0_v1.0.0.pkl")
    convert.add_argument("dst", type=Path, help="output .npz file, or a directory")
    convert.set_defaults(func=_convert)

    synth = subparsers.add_parser(
        "make-synthetic-smpl", help="write a synthetic SMPL-format model (tests/demos only)",
        description="Write a synthetic stand-in with the format of the SMPL files "
        "(smpl/SMPL_*.pkl|npz, J_regressor_extra.npy, J_regressor_h36m.npy, "
        "smpl_mean_params.npz). It is not SMPL: estimates made with it are meaningless.")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--genders", nargs="+", default=["neutral", "male", "female"],
                       choices=["neutral", "male", "female"])
    synth.add_argument("--format", nargs="+", default=["pkl"], choices=["pkl", "npz"],
                       dest="formats", help="file format(s) of the SMPL_*.{pkl,npz} files")
    synth.set_defaults(func=_make_synthetic)


def _convert(args: argparse.Namespace) -> int:
    from .smpl_files import convert_pkl_to_npz

    dst = convert_pkl_to_npz(args.src, args.dst)
    log.info("wrote %s", dst)
    return 0


def _make_synthetic(args: argparse.Namespace) -> int:
    from .synthetic import write_synthetic_model_dir

    out = write_synthetic_model_dir(args.out_dir, genders=args.genders, formats=args.formats)
    log.info("wrote a SYNTHETIC SMPL-format model to %s (not SMPL; for tests and demos only)", out)
    return 0
