"""Does ``part_visibility`` drop when a body part is hidden? A PARE-style synthetic-occlusion check.

PARE trains with synthetic occlusion: objects pasted at random over the person crop (Sárándi
et al. 2018). Here one occluder — a random *textured* patch (smooth colour blobs plus pixel
noise, so it has edges and texture like a real object rather than a flat colour) — is pasted
over the image region of one body part inside a 224×224 crop, and
:func:`pare_ros.visibility.part_visibility` is compared before/after for all 24 parts.

Works with any backend ``normalised crops [N,3,224,224] → dict`` holding ``pred_segm_mask``
[N,25,56,56] (a ``PARE`` module, an ONNX/TensorRT wrapper, a test double). With untrained
weights the numbers are meaningless: that run only checks the plumbing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

import cv2
import numpy as np
import torch

from ..preprocessing import CROP_SIZE, normalize_crops
from ..visibility import part_visibility

Backend = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


@dataclass
class OcclusionResult:
    """part: occluded SMPL part index (0..23); region: xyxy crop px; before/after/drops (24,)
    with drops = before − after (positive: that part's visibility fell); occluded_crop uint8."""

    part: int
    region: np.ndarray
    before: np.ndarray
    after: np.ndarray
    drops: np.ndarray
    occluded_crop: np.ndarray


def textured_patch(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [height,width,3]: upsampled random colour grid (blobs) + Gaussian pixel noise."""
    grid = rng.integers(0, 256, (max(2, height // 12), max(2, width // 12), 3)).astype(np.float32)
    blobs = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(blobs + rng.normal(0, 30, blobs.shape), 0, 255).astype(np.uint8)


def part_region(segm_logits, part: int, margin: float = 0.15, min_side: float = 32.0,
                size: int = CROP_SIZE) -> np.ndarray:
    """xyxy crop px covering SMPL part ``part`` in one crop's logits [25,h,w]: the box of the
    pixels segmented as that part, grown by ``margin`` of its size; when no pixel is (untrained
    weights, hidden part), a ``min_side`` square around the peak of the part's attention."""
    logits = torch.as_tensor(segm_logits).float()
    h, w = logits.shape[-2:]
    sx, sy = size / w, size / h
    ys, xs = np.nonzero((logits.argmax(0) == part + 1).cpu().numpy())
    if len(xs):
        box = np.array([xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy])
    else:
        y, x = divmod(int(logits[part + 1].argmax()), w)
        cx, cy = (x + 0.5) * sx, (y + 0.5) * sy
        box = np.array([cx, cy, cx, cy])
    centre = (box[:2] + box[2:]) / 2
    half = np.maximum((box[2:] - box[:2]) * (1 + 2 * margin), min_side) / 2
    return np.clip(np.r_[centre - half, centre + half], 0, size)


def paste_occluder(crop_rgb: np.ndarray, region, rng: np.random.Generator) -> np.ndarray:
    """Copy of the crop with a textured patch over ``region`` (xyxy px, rounded outward)."""
    x0, y0 = (int(np.floor(v)) for v in region[:2])
    x1, y1 = (int(np.ceil(v)) for v in region[2:])
    out = crop_rgb.copy()
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = textured_patch(y1 - y0, x1 - x0, rng)
    return out


def _visibility(backend: Backend, crops: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        segm = torch.as_tensor(backend(normalize_crops(crops))["pred_segm_mask"])
    return part_visibility(segm).cpu().numpy(), segm


def occlusion_sweep(backend: Backend, crop_rgb: np.ndarray, parts: Optional[Iterable[int]] = None,
                    regions: Optional[Sequence] = None, seed: int = 0,
                    batch_size: int = 8) -> list[OcclusionResult]:
    """Occlude each of ``parts`` (default all 24) in turn; regions default to
    :func:`part_region` of the clean crop's own segmentation. One clean forward pass, then the
    occluded crops in batches of ``batch_size``."""
    crop_rgb = np.asarray(crop_rgb)
    if crop_rgb.shape != (CROP_SIZE, CROP_SIZE, 3) or crop_rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 crop [{CROP_SIZE},{CROP_SIZE},3], got "
                         f"{crop_rgb.dtype} {crop_rgb.shape}")
    parts = list(range(24) if parts is None else parts)
    rng = np.random.default_rng(seed)
    before, segm = _visibility(backend, crop_rgb[None])
    if regions is None:
        regions = [part_region(segm[0], p) for p in parts]
    regions = [np.asarray(r, dtype=np.float64).reshape(4) for r in regions]
    occluded = np.stack([paste_occluder(crop_rgb, r, rng) for r in regions])
    after = np.concatenate([_visibility(backend, occluded[i:i + batch_size])[0]
                            for i in range(0, len(occluded), batch_size)])
    return [OcclusionResult(p, r, before[0], after[k], before[0] - after[k], occluded[k])
            for k, (p, r) in enumerate(zip(parts, regions))]


def occlusion_check(backend: Backend, crop_rgb: np.ndarray, part: int, region=None,
                    seed: int = 0) -> OcclusionResult:
    """Occlude one part (``region`` xyxy crop px, default from the crop's segmentation) and
    return the per-part visibility drops (24,)."""
    return occlusion_sweep(backend, crop_rgb, [part], None if region is None else [region], seed)[0]
