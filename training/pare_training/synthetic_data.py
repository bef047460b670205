"""Synthetic HumanData generator: a shaded SMPL mesh in random poses/shapes/cameras over random
backgrounds with occluders, written as a HumanData ``.npz`` + images that ``HumanDataset`` reads.

The body is the real SMPL model when ``BodyModel.from_dir`` finds it, else the synthetic
SMPL-format stand-in (``pare_ros.body_model.synthetic``; results are then only plumbing tests).
Rendering reuses the exact z-buffer of :mod:`pare_training.part_labels` (face index per pixel),
shaded Lambertian with one random light. Annotations are exact: ``keypoints2d`` / ``keypoints3d``
are PARE's 49 joints (written into their HUMAN_DATA slots) projected with the image's pinhole
camera (OpenCV frame, integer pixel = pixel centre); ``smpl`` holds the axis-angle parameters and
``transl`` so that vertices + transl are in the camera frame; ``misc`` holds the camera.
Joints outside the image get confidence 0. Occluders are pasted after rendering (the labels do
not know about them, as with real occlusion).

    python -m pare_training.synthetic_data OUT_DIR --count 100 [--model-dir model/] [--seed 0]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from pare_ros.body_model import BodyModel

from .humandata import JOINT49_FROM_HUMANDATA
from .part_labels import rasterize_faces


def default_body_model(model_dir: Optional[str | Path], cache_dir: str | Path) -> BodyModel:
    """The real body model if available, else the synthetic one written under ``cache_dir``."""
    from pare_ros.model_files import MissingModelFileError
    try:
        return BodyModel.from_dir(model_dir)
    except MissingModelFileError:
        from pare_ros.body_model.synthetic import write_synthetic_model_dir
        d = Path(cache_dir) / "synthetic_model"
        if not (d / "smpl").is_dir():
            write_synthetic_model_dir(d)
        return BodyModel.from_dir(d)


def random_params(rng: np.random.Generator, n: int):
    """Plausible-ish random (global_orient [n,3], body_pose [n,23,3], betas [n,10]) axis-angle:
    upright person (180° about x into the camera frame) with a random yaw and small tilt; joints
    N(0, 0.2) rad, arms N(0, 0.5), knees/elbows flexing one way only."""
    from scipy.spatial.transform import Rotation
    yaw = rng.uniform(-np.pi, np.pi, n)
    tilt = rng.normal(0, 0.1, (n, 2))
    go = (Rotation.from_rotvec(np.c_[np.full(n, np.pi), np.zeros((n, 2))])
          * Rotation.from_rotvec(np.c_[tilt[:, 0], yaw, tilt[:, 1]])).as_rotvec()
    bp = rng.normal(0, 0.2, (n, 23, 3))
    for j in (15, 16, 17, 18):                 # collars/shoulders/elbows (SMPL 16..19 → bp 15..18)
        bp[:, j] *= 2.5
    bp[:, 3, 0] = np.abs(rng.normal(0, 0.6, n))   # left knee (SMPL 4) flexes about +x
    bp[:, 4, 0] = np.abs(rng.normal(0, 0.6, n))   # right knee (SMPL 5)
    betas = np.clip(rng.normal(0, 1, (n, 10)), -2.5, 2.5)
    return go.astype(np.float32), bp.astype(np.float32), betas.astype(np.float32)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    import cv2
    small = rng.integers(0, 256, (rng.integers(2, 8), rng.integers(2, 8), 3)).astype(np.uint8)
    bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    bg += rng.normal(0, rng.uniform(2, 25), (h, w, 3))
    return np.clip(bg, 0, 255).astype(np.uint8)


def shade(vertices: np.ndarray, faces: np.ndarray, face_ids: np.ndarray, colour: np.ndarray,
          light: np.ndarray) -> tuple:
    """RGB float [H,W,3] and mask of a Lambertian mesh from the face-index map."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    lam = np.abs(n @ light)                      # two-sided (winding of stand-in is not relied on)
    mask = face_ids >= 0
    inten = np.where(mask, 0.25 + 0.75 * lam[np.maximum(face_ids, 0)], 0.0)
    return inten[..., None] * colour, mask


def generate(out_dir: str | Path, count: int, body_model: Optional[BodyModel] = None,
             model_dir: Optional[str | Path] = None, image_size: Sequence[int] = (256, 256),
             seed: int = 0, occluders: bool = True, name: str = "synthetic") -> Path:
    """Write ``count`` images under ``out_dir/images`` and ``out_dir/{name}.npz``; returns the
    npz path (image_path entries are relative to ``out_dir``). ``image_size`` is (width, height)."""
    import cv2
    from .augment import make_synthetic_occluders, occlude_with_objects
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    body = body_model if body_model is not None else default_body_model(model_dir, out_dir)
    rng = np.random.default_rng(seed)
    w, h = int(image_size[0]), int(image_size[1])
    go, bp, betas = random_params(rng, count)
    aa = torch.from_numpy(np.concatenate([go[:, None], bp], 1))
    from pare_ros.geometry import axis_angle_to_rotmat
    with torch.no_grad():
        out = body(axis_angle_to_rotmat(aa), torch.from_numpy(betas))
    verts0, j49_0 = out.vertices.numpy(), out.joints49.numpy()
    faces = body.faces
    occ = make_synthetic_occluders(16, seed=seed) if occluders else []
    idx = np.array(JOINT49_FROM_HUMANDATA)
    kp2d = np.zeros((count, 190, 3), np.float32)
    kp3d = np.zeros((count, 190, 4), np.float32)
    bbox = np.zeros((count, 5), np.float32)
    transl = np.zeros((count, 3), np.float32)
    focal = np.zeros(count, np.float32)
    paths = []
    for i in range(count):
        f = rng.uniform(0.8, 2.0) * max(w, h)
        ext = verts0[i].max(0) - verts0[i].min(0)
        frac = rng.uniform(0.5, 0.85)               # body's larger extent / image height
        tz = f * max(ext[0], ext[1]) / (frac * h) + ext[2]
        centre = (verts0[i].max(0) + verts0[i].min(0)) / 2
        off = rng.uniform(-0.1, 0.1, 2) * np.array([w, h]) * tz / f
        t = np.array([off[0] - centre[0], off[1] - centre[1], tz], np.float32)
        v = verts0[i] + t
        ids = rasterize_faces(v, faces, f, w / 2, h / 2, (h, w))
        colour = rng.uniform(60, 255, 3)
        light = rng.normal(0, 1, 3)
        light[2] = -abs(light[2]) - 0.5            # from the camera side
        light /= np.linalg.norm(light)
        rgb, mask = shade(v, faces, ids, colour, light)
        img = _background(rng, h, w).astype(np.float32)
        img[mask] = rgb[mask]
        img = np.clip(img, 0, 255).astype(np.uint8)
        if occ and rng.random() < 0.5:
            img = occlude_with_objects(img, occ, rng, max_count=3)
        j = j49_0[i] + t
        uv = f * j[:, :2] / j[:, 2:] + [w / 2, h / 2]
        inside = ((uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1))
        kp2d[i, idx, :2], kp2d[i, idx, 2] = uv, inside
        kp3d[i, idx, :3], kp3d[i, idx, 3] = j, 1.0
        ys, xs = np.nonzero(mask)
        if len(xs):
            bbox[i] = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1, 1.0]
        transl[i], focal[i] = t, f
        rel = f"images/{name}_{i:06d}.png"
        cv2.imwrite(str(out_dir / rel), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(rel)
    mask190 = np.zeros(190, np.float32)
    mask190[idx] = 1
    smpl = {"global_orient": go, "body_pose": bp, "betas": betas, "transl": transl}
    misc = {"camera": "pinhole", "focal_length": focal,
            "principal_point": np.tile([w / 2, h / 2], (count, 1)).astype(np.float32),
            "bbox_source": "rendered silhouette", "note": "synthetic renders"}
    path = out_dir / f"{name}.npz"
    np.savez(path, image_path=np.array(paths), bbox_xywh=bbox, keypoints2d=kp2d,
             keypoints2d_mask=mask190, keypoints3d=kp3d, keypoints3d_mask=mask190,
             smpl=np.array(smpl, dtype=object),
             meta=np.array({"gender": np.array([body.gender] * count)}, dtype=object),
             misc=np.array(misc, dtype=object), config=np.array(name))
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pare_training.synthetic_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--model-dir", default=None)
    p.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("W", "H"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-occluders", action="store_true")
    a = p.parse_args(argv)
    path = generate(a.out_dir, a.count, model_dir=a.model_dir, image_size=a.size, seed=a.seed,
                    occluders=not a.no_occluders)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
