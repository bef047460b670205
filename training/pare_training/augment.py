"""Training augmentation (pare-model-spec.md §10.3): flip, scale/rotation jitter, colour noise,
synthetic occlusion.

A *sample* is a dict of numpy arrays as built by ``HumanDataset`` before tensor conversion:
    ``img``       uint8 [224,224,3] RGB crop,
    ``keypoints`` [49,3] 2D joints in [-1,1] crop coordinates + conf,
    ``pose_3d``   [49,4] 3D joints (camera frame: x right, y down, z forward; metres) + conf,
    ``pose``      [72] SMPL axis-angle, global orientation first,
    ``betas``     [10].
Scale and rotation are applied by the dataset while cropping (they change the crop window);
:class:`Augmenter` draws them and applies the rest to the crop.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np

from pare_ros.constants import JOINT49_FLIP_PERM, SMPL_FLIP_PERM

_JOINT49_PERM = np.array(JOINT49_FLIP_PERM)
_SMPL_PERM = np.array(SMPL_FLIP_PERM)


# ------------------------------------------------------------------------------------------
# Horizontal flip
# ------------------------------------------------------------------------------------------
def flip_keypoints_2d(kp: np.ndarray, size: int = 224) -> np.ndarray:
    """[49,C] [-1,1] crop keypoints of an image → those of the mirrored image.

    Left/right joints swap (JOINT49_FLIP_PERM). ``img[:, ::-1]`` sends pixel column j to
    size−1−j (cv2 pixel centres are at integers), i.e. x → −x − 2/size in [-1,1] units; the
    SPIN code uses x → −x, half a pixel off, which this avoids so image and joints agree.
    """
    out = np.array(kp, dtype=np.float32)[_JOINT49_PERM]
    out[:, 0] = -out[:, 0] - 2.0 / size
    return out


def flip_keypoints_3d(kp: np.ndarray) -> np.ndarray:
    """[49,C] camera-frame 3D joints → mirrored body: swap left/right, x → −x."""
    out = np.array(kp, dtype=np.float32)[_JOINT49_PERM]
    out[:, 0] = -out[:, 0]
    return out


def flip_pose(pose: np.ndarray) -> np.ndarray:
    """[72] (or [24,3]) SMPL axis-angle → the mirrored pose.

    Mirroring by M = diag(−1,1,1) turns each rotation R into M R M, whose axis-angle is
    (x, −y, −z); joints swap left/right (SMPL_FLIP_PERM).
    """
    shape = np.shape(pose)
    aa = np.asarray(pose, dtype=np.float32).reshape(24, 3)[_SMPL_PERM].copy()
    aa[:, 1:] *= -1
    return aa.reshape(shape)


def flip_sample(sample: Dict[str, Any]) -> Dict[str, Any]:
    """Mirror a sample horizontally (image, 2D/3D joints, SMPL pose); betas are unchanged."""
    out = dict(sample)
    out["img"] = np.ascontiguousarray(sample["img"][:, ::-1])
    out["keypoints"] = flip_keypoints_2d(sample["keypoints"], sample["img"].shape[1])
    out["pose_3d"] = flip_keypoints_3d(sample["pose_3d"])
    out["pose"] = flip_pose(sample["pose"])
    return out


# ------------------------------------------------------------------------------------------
# Colour noise
# ------------------------------------------------------------------------------------------
def channel_noise(img: np.ndarray, factors: Sequence[float]) -> np.ndarray:
    """uint8 [H,W,3] × per-channel factors (e.g. U(0.6,1.4)³), clipped to [0,255]."""
    out = img.astype(np.float32) * np.asarray(factors, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------
# Synthetic occlusion
# ------------------------------------------------------------------------------------------
def load_occluders(path: str | Path, trust_pickle: bool = False) -> List[np.ndarray]:
    """Occluder cut-outs from an ``.npy`` (e.g. mmhuman3d's ``pascal_occluders.npy``).

    Accepts a uint8 [K,h,w,4] RGBA array, or a 1-D object array of RGBA images of different
    sizes. Object arrays are pickled and unpickling executes code from the file: they are
    refused unless ``trust_pickle=True`` (only for files from a trusted source).
    """
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if not trust_pickle:
            raise ValueError(f"{path} holds pickled objects; reading it executes code from the "
                             "file. Pass trust_pickle=True only for a trusted file.") from exc
        arr = np.load(path, allow_pickle=True)
    occluders = [np.asarray(o, dtype=np.uint8) for o in arr]
    for o in occluders:
        if o.ndim != 3 or o.shape[2] != 4:
            raise ValueError(f"{path}: occluders must be RGBA [h,w,4], got {o.shape}")
    return occluders


def make_synthetic_occluders(count: int = 32, seed: int = 0,
                             size_range: Sequence[int] = (40, 120)) -> List[np.ndarray]:
    """Stand-in occluders when no Pascal cut-outs are available: random polygons filled with a
    random colour plus smooth texture noise, alpha = polygon mask. Each RGBA uint8 [h,w,4]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))
        n_pts = int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n_pts))
        rad = rng.uniform(0.5, 1.0, n_pts)[:, None] * np.array([w, h]) / 2
        pts = np.stack([np.cos(ang), np.sin(ang)], 1) * rad + np.array([w, h]) / 2
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
        # Texture: a coarse random grid upsampled (smooth blobs) around a base colour.
        tex = cv2.resize(rng.normal(0, 40, (4, 4, 3)).astype(np.float32), (w, h),
                         interpolation=cv2.INTER_CUBIC)
        rgb = np.clip(rng.uniform(0, 255, 3) + tex + rng.normal(0, 10, (h, w, 3)), 0, 255)
        out.append(np.dstack([rgb.astype(np.uint8), mask]))
    return out


def occlude_with_objects(img: np.ndarray, occluders: Sequence[np.ndarray],
                         rng: np.random.Generator, max_count: int = 7) -> np.ndarray:
    """Paste 1..max_count random occluders onto a uint8 [H,W,3] image (PARE's
    ``occlude_with_pascal_objects``: scale U(0.2,1.0) × min(H,W)/256, uniform centre, alpha
    blend). Returns a new image."""
    out = img.astype(np.float32)
    h, w = img.shape[:2]
    base = min(h, w) / 256.0
    for _ in range(int(rng.integers(1, max_count + 1))):
        occ = occluders[int(rng.integers(len(occluders)))]
        f = rng.uniform(0.2, 1.0) * base
        ow, oh = max(1, round(occ.shape[1] * f)), max(1, round(occ.shape[0] * f))
        occ = cv2.resize(occ, (ow, oh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        x0, y0 = int(round(cx - ow / 2)), int(round(cy - oh / 2))
        # Intersection of the occluder box with the image.
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + ow, w), min(y0 + oh, h)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        patch = occ[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0].astype(np.float32)
        alpha = patch[:, :, 3:] / 255.0
        region = out[iy0:iy1, ix0:ix1]
        out[iy0:iy1, ix0:ix1] = alpha * patch[:, :, :3] + (1 - alpha) * region
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------
# The augmenter used by HumanDataset
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AugmentParams:
    """One sample's augmentation: flip, crop scale multiplier, rotation (deg, counter-clockwise
    on screen), per-channel colour factors [3], whether to occlude."""

    flip: bool = False
    scale: float = 1.0
    rot: float = 0.0
    pn: tuple = (1.0, 1.0, 1.0)
    occlude: bool = False


class Augmenter:
    """PARE's training augmentation with its defaults (§10.3).

    Args:
        flip_prob: horizontal flip probability (0.5).
        rot_factor / rot_prob: rotation N(0, rot_factor°) clipped to ±2·rot_factor, applied with
            probability rot_prob (PARE 0.4; mmhuman3d 0.6).
        scale_factor: crop scale N(1, s) clipped to [1−s, 1+s] (0.25).
        noise_factor: colour factors U(1−n, 1+n) per channel (0.4).
        occluders: RGBA cut-outs (:func:`load_occluders`); ``None`` with ``occlusion_prob`` > 0
            uses :func:`make_synthetic_occluders`.
        occlusion_prob: probability of pasting occluders on the crop (PARE default off: 0).
    """

    def __init__(self, flip_prob: float = 0.5, rot_factor: float = 30.0, rot_prob: float = 0.4,
                 scale_factor: float = 0.25, noise_factor: float = 0.4,
                 occluders: Optional[Sequence[np.ndarray]] = None,
                 occlusion_prob: float = 0.0) -> None:
        self.flip_prob, self.rot_factor, self.rot_prob = flip_prob, rot_factor, rot_prob
        self.scale_factor, self.noise_factor = scale_factor, noise_factor
        self.occlusion_prob = occlusion_prob
        if occluders is None and occlusion_prob > 0:
            occluders = make_synthetic_occluders()
        self.occluders = list(occluders) if occluders is not None else []

    def sample(self, rng: np.random.Generator) -> AugmentParams:
        """Draw one sample's parameters."""
        rot = float(np.clip(rng.normal(0, self.rot_factor), -2 * self.rot_factor,
                            2 * self.rot_factor))
        if rng.random() >= self.rot_prob:
            rot = 0.0
        sf = self.scale_factor
        scale = float(np.clip(rng.normal(1.0, sf), 1 - sf, 1 + sf))
        nf = self.noise_factor
        return AugmentParams(flip=bool(rng.random() < self.flip_prob), scale=scale, rot=rot,
                             pn=tuple(float(v) for v in rng.uniform(1 - nf, 1 + nf, 3)),
                             occlude=bool(self.occluders) and bool(rng.random() < self.occlusion_prob))

    def apply(self, sample: Dict[str, Any], params: AugmentParams,
              rng: np.random.Generator) -> Dict[str, Any]:
        """Occlusion (on the crop, as PARE), flip, colour noise. Scale/rotation are the
        dataset's (they change the crop window)."""
        out = dict(sample)
        if params.occlude:
            out["img"] = occlude_with_objects(out["img"], self.occluders, rng)
        if params.flip:
            out = flip_sample(out)
        out["img"] = channel_noise(out["img"], params.pn)
        return out
