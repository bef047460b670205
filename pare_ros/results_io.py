"""Writing estimates to disk: a JSON of the per-person results and an ``.npz`` of the large
arrays (vertices, part attention and segmentation), both indexed by person."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import numpy as np

from .constants import JOINT49_NAMES, SMPL_JOINT_NAMES
from .estimator import Estimates


def _round(a: np.ndarray, digits: int = 6) -> List:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def estimates_to_dict(estimates: Estimates, meta: Dict | None = None) -> Dict:
    width, height = estimates.image_size
    people = []
    for i, b in enumerate(estimates.bodies):
        people.append({
            "index": i,
            "box_xyxy": _round(b.box, 2),
            "score": float(b.score),
            "crop": {"cx": b.crop.cx, "cy": b.crop.cy, "side": b.crop.side},
            "cam_crop": _round(b.cam_crop),
            "betas": _round(b.betas),
            "global_orient": _round(b.axis_angle[0]),
            "body_pose": _round(b.axis_angle[1:].reshape(-1)),
            "rotmats": _round(b.rotmats),
            "transl": _round(b.transl),
            "joints3d": _round(b.joints3d),
            "keypoints3d": _round(b.keypoints3d),
            "joints2d": _round(b.joints2d, 3),
            "keypoints2d": _round(b.keypoints2d, 3),
            "part_visibility": _round(b.part_visibility, 4),
            "truncation": round(b.truncation, 4),
        })
    return {
        "image_size": {"width": width, "height": height},
        "intrinsics": dict(zip(("fx", "fy", "cx", "cy"), estimates.intrinsics.as_tuple())),
        "joint_names": {"joints3d": SMPL_JOINT_NAMES, "keypoints3d": JOINT49_NAMES},
        "units": {"3d": "m, camera optical frame (x right, y down, z forward)", "2d": "px"},
        "timings_s": {k: round(v, 6) for k, v in estimates.timings.items()},
        "meta": meta or {},
        "people": people,
    }


def write_results(estimates: Estimates, out_dir: Path, stem: str = "results",
                  meta: Dict | None = None) -> Dict[str, Path]:
    """Write ``<stem>.json`` and ``<stem>.npz`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, npz_path = out_dir / f"{stem}.json", out_dir / f"{stem}.npz"
    data = estimates_to_dict(estimates, meta)
    data["arrays_file"] = npz_path.name
    json_path.write_text(json.dumps(data, indent=1))
    bodies = estimates.bodies
    np.savez_compressed(
        npz_path,
        vertices=np.stack([b.vertices for b in bodies]) if bodies else np.zeros((0, 6890, 3)),
        part_attention=np.stack([b.part_attention for b in bodies]) if bodies else np.zeros((0, 24, 56, 56)),
        part_segm_logits=np.stack([b.part_segm_logits for b in bodies]) if bodies else np.zeros((0, 25, 56, 56)),
    )
    return {"json": json_path, "npz": npz_path}
