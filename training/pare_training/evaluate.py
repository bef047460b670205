"""Evaluate a PARE checkpoint on a HumanData set with the 3DPW protocol (pare-model-spec.md §11).

Predicted and ground-truth meshes both go through the *neutral* body model; the GT mesh comes
from the dataset's SMPL parameters (``smpl`` key, so ``trust_pickle`` is needed). Joints are the
Human3.6M-regressor joints, root (H36M 0) subtracted, 14 LSP joints selected
(:func:`pare_training.metrics.evaluate_meshes`). Crops are the un-augmented dataset crops
(``HumanDataset``, box scale 1.25).

Outputs (``out_dir``): ``metrics.json`` with per-frame errors, their means, a per-joint table
(14 LSP joints, MPJPE and PA-MPJPE), the mean over the occluded subset when the dataset marks
occlusion (an ``occluded`` array of length N at the top level or in ``meta``/``misc``), and the
error as a function of the predicted mean part visibility (``pare_ros.visibility``), binned;
``error_vs_visibility.png`` when matplotlib is installed (otherwise a note in the JSON).

    python -m pare_training.evaluate --checkpoint CKPT --data DATA.npz --image-root DIR \
        --out DIR [--model-dir model/] [--batch-size 16] [--device cpu] [--trust-pickle]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from pare_ros.body_model import BodyModel
from pare_ros.network import PARE, load_network
from pare_ros.visibility import part_visibility

from .humandata import HumanDataError, HumanDataset, load_humandata
from .metrics import evaluate_meshes, root_relative_lsp14, similarity_procrustes

#: Names of the 14 LSP-order evaluation joints (pare_ros.constants.H36M_TO_LSP14).
LSP14_NAMES = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
               "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
               "left_wrist", "neck", "head_top")
METRICS = ("mpjpe", "pa_mpjpe", "pve")


# 3DPW sequences with heavy occlusion on which PARE reports its "3DPW-OCC" subset (sequence-name
# prefixes; the test split's own sequence folders carry suffixes such as "_00").
PW3D_OCCLUDED_SEQUENCES = (
    "courtyard_backpack", "courtyard_basketball", "courtyard_bodyScannerMotions", "courtyard_box",
    "courtyard_golf", "courtyard_jacket", "courtyard_laceShoe", "downtown_stairs", "flat_guitar",
    "flat_packBags", "outdoors_climbing", "outdoors_crosscountry", "outdoors_fencing",
    "outdoors_freestyle", "outdoors_golf", "outdoors_parcours", "outdoors_slalom",
)


def pw3d_occluded(image_paths) -> np.ndarray:
    """Per-frame flags: the frame's sequence folder (parent directory of the image path) is one
    of :data:`PW3D_OCCLUDED_SEQUENCES`."""
    sequences = [Path(str(p)).parent.name for p in image_paths]
    return np.array([any(seq.startswith(name) for name in PW3D_OCCLUDED_SEQUENCES) for seq in sequences])


def _occlusion_flags(data: Dict[str, Any], n: int) -> Optional[np.ndarray]:
    """Per-frame occlusion flags: an ``occluded`` array in the dataset, else 3DPW's occluded
    sequences recognised from the image paths, else None."""
    for source in (data, data.get("meta"), data.get("misc")):
        if isinstance(source, dict) and "occluded" in source:
            flags = np.asarray(source["occluded"]).reshape(-1)
            if len(flags) == n:
                return flags.astype(bool)
    paths = data.get("image_path")
    if paths is not None and len(paths) == n:
        flags = pw3d_occluded(paths)
        if flags.any():
            return flags
    return None


def _visibility_bins(vis: np.ndarray, err: Dict[str, np.ndarray], bins: int = 5) -> list:
    """Mean errors in ``bins`` equal-width visibility bins spanning the observed range."""
    edges = np.linspace(float(vis.min()), float(vis.max()), bins + 1)
    rows = []
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        sel = (vis >= lo) & ((vis < hi) | (b == bins - 1))
        rows.append({"visibility_from": float(lo), "visibility_to": float(hi),
                     "count": int(sel.sum()),
                     **{k: (float(v[sel].mean()) if sel.any() else None) for k, v in err.items()}})
    return rows


def _plot(path: Path, vis: np.ndarray, err: Dict[str, np.ndarray]) -> Optional[str]:
    """Scatter of error vs. mean part visibility; returns a note instead when matplotlib is absent."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: plot skipped (binned values are in visibility_bins)"
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, v in err.items():
        ax.scatter(vis, v, s=8, label=k)
    ax.set_xlabel("mean predicted part visibility")
    ax.set_ylabel("error (mm)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def evaluate(checkpoint: str | Path | PARE, data_npz: str | Path, image_root: str | Path,
             model_dir: Optional[str | Path] = None, batch_size: int = 16, device: str = "cpu",
             trust_pickle: bool = False, out_dir: Optional[str | Path] = None,
             max_frames: Optional[int] = None) -> Dict[str, Any]:
    """Run the §11 evaluation; returns the metrics dict (also written to ``out_dir/metrics.json``).

    Args:
        checkpoint: checkpoint path (read with ``load_network``) or a PARE module.
        data_npz, image_root: the HumanData file (with ``smpl``) and its image directory.
        model_dir: body model directory (neutral SMPL + ``J_regressor_h36m``).
        trust_pickle: needed to read the pickled ``smpl`` key (trusted files only).
        out_dir: where ``metrics.json`` (and the plot) go; None: nothing is written.
        max_frames: evaluate only the first ``max_frames`` frames.
    """
    started = time.time()
    dev = torch.device(device)
    if isinstance(checkpoint, PARE):
        model, source = checkpoint.to(dev).eval(), "<module>"
    else:
        model, source = load_network(checkpoint, device=dev), str(checkpoint)
    body = BodyModel.from_dir(model_dir).to(dev)
    if body.J_regressor_h36m is None:
        body.h36m_joints(torch.zeros(1, 1, 3))       # raises MissingModelFileError with guidance
    data = load_humandata(data_npz, trust_pickle=trust_pickle)
    ds = HumanDataset(data, image_root, augment=None)
    if ds.smpl is None:
        raise HumanDataError(f"{data_npz}: no 'smpl' ground truth; the §11 protocol needs it")
    n = len(ds) if max_frames is None else min(len(ds), int(max_frames))
    loader = DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=batch_size,
                        shuffle=False, num_workers=0)
    per: Dict[str, list] = {k: [] for k in METRICS}
    joint_err, joint_pa, vis_all, paths = [], [], [], []
    with torch.no_grad():
        for batch in loader:
            pred = model(batch["img"].to(dev))
            p = body(pred["pred_pose"].float(), pred["pred_shape"].float())
            g = body(batch["pose_rotmat"].to(dev), batch["betas"].to(dev))
            ph, gh = body.h36m_joints(p.vertices), body.h36m_joints(g.vertices)
            res = evaluate_meshes(ph, gh, p.vertices, g.vertices)
            for k in METRICS:
                per[k].append(res[k].cpu())
            pj, gj = root_relative_lsp14(ph), root_relative_lsp14(gh)
            joint_err.append(((pj - gj).norm(dim=-1) * 1000).cpu())
            joint_pa.append(((similarity_procrustes(pj, gj) - gj).norm(dim=-1) * 1000).cpu())
            vis_all.append(part_visibility(pred["pred_segm_mask"]).mean(1).cpu())
            paths.extend(batch["image_path"])
    err = {k: torch.cat(v).numpy().astype(np.float64) for k, v in per.items()}
    je, jp = torch.cat(joint_err).numpy(), torch.cat(joint_pa).numpy()
    vis = torch.cat(vis_all).numpy().astype(np.float64)
    out: Dict[str, Any] = {
        "checkpoint": source, "data": str(data_npz), "frames": n,
        "protocol": "pare-model-spec §11: neutral body model, H36M regressor, root H36M 0, "
                    "14 LSP joints; PVE without alignment; units mm",
        "mean": {k: float(v.mean()) for k, v in err.items()},
        "per_joint": [{"joint": name, "mpjpe": float(je[:, j].mean()),
                       "pa_mpjpe": float(jp[:, j].mean())} for j, name in enumerate(LSP14_NAMES)],
        "visibility_bins": _visibility_bins(vis, err),
        "per_frame": [{"image_path": pth, "mean_visibility": float(vis[i]),
                       **{k: float(err[k][i]) for k in METRICS}} for i, pth in enumerate(paths)],
    }
    flags = _occlusion_flags(data, len(ds))
    if flags is not None:
        flags = flags[:n]
        out["occluded_subset"] = {"frames": int(flags.sum()),
                                  **{k: (float(v[flags].mean()) if flags.any() else None)
                                     for k, v in err.items()}}
    else:
        out["occluded_subset"] = None
        out["occluded_note"] = "dataset has no per-frame 'occluded' flags: subset skipped"
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        plot = out_dir / "error_vs_visibility.png"
        note = _plot(plot, vis, err)
        out["plot"] = str(plot) if note is None else None
        if note:
            out["plot_note"] = note
    out["seconds"] = round(time.time() - started, 2)
    if out_dir is not None:
        (Path(out_dir) / "metrics.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def format_summary(metrics: Dict[str, Any]) -> str:
    """A few lines: means, occluded subset, per-joint MPJPE."""
    m = metrics["mean"]
    lines = [f"{metrics['frames']} frames: MPJPE {m['mpjpe']:.1f}  PA-MPJPE {m['pa_mpjpe']:.1f}  "
             f"PVE {m['pve']:.1f} mm"]
    occ = metrics.get("occluded_subset")
    if occ:
        lines.append(f"occluded subset ({occ['frames']} frames): MPJPE {occ['mpjpe']}  "
                     f"PA-MPJPE {occ['pa_mpjpe']}  PVE {occ['pve']}")
    lines.append("per joint MPJPE / PA-MPJPE (mm): " + ", ".join(
        f"{r['joint']} {r['mpjpe']:.0f}/{r['pa_mpjpe']:.0f}" for r in metrics["per_joint"]))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pare_training.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="HumanData .npz with smpl ground truth")
    p.add_argument("--image-root", required=True)
    p.add_argument("--out", required=True, help="output directory (metrics.json, plot)")
    p.add_argument("--model-dir", default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--trust-pickle", action="store_true",
                   help="read the pickled smpl/meta/misc keys (runs code from the file)")
    a = p.parse_args(argv)
    metrics = evaluate(a.checkpoint, a.data, a.image_root, a.model_dir, a.batch_size, a.device,
                       a.trust_pickle, a.out, a.max_frames)
    print(format_summary(metrics))
    print(f"wrote {Path(a.out) / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
