"""Pinhole intrinsics and the conversion of PARE's crop camera to the real camera.

PARE predicts a weak-perspective camera (s, tx, ty) for its 224-pixel crop: a body point
X (metres, body frame) lands at crop pixel 112 + 112·s·(X_xy + t). Back in the source image the
same point is at ``centre + side/2 · s · (X_xy + t)``. With the real intrinsics (fx, fy, cx, cy)
we choose the translation T of a perspective camera so that

* the body scale matches: ``f̄ / T_z = side·s / 2`` with f̄ = (fx + fy)/2, and
* the body origin reprojects exactly onto its weak-perspective image position.

This is exact at the root depth and the usual weak-perspective approximation for points in
front of/behind it (reference spec §6, last row). The principal point comes from CameraInfo,
not from the image centre that PARE's own demo assumes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"invalid intrinsics fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}")

    @classmethod
    def default_for(cls, width: int, height: int, hfov_deg: float = 60.0) -> "Intrinsics":
        """Unknown camera: square pixels, principal point at the centre, 60° horizontal FOV
        (a typical webcam/robot RGB camera)."""
        f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        return cls(f, f, width / 2, height / 2)

    @classmethod
    def from_k(cls, k: np.ndarray) -> "Intrinsics":
        """From a 3×3 camera matrix (or its 9 row-major values)."""
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(k[0, 0], k[1, 1], k[0, 2], k[1, 2])

    def as_tuple(self) -> tuple:
        return (self.fx, self.fy, self.cx, self.cy)


def crop_cam_to_translation(cam: torch.Tensor, centres: torch.Tensor, sides: torch.Tensor,
                            intrinsics: Intrinsics) -> torch.Tensor:
    """Weak-perspective crop cameras → translations in the camera optical frame.

    Args:
        cam: [N,3] (s, tx, ty) from PARE.
        centres: [N,2] crop centres in source pixels; sides: [N] crop side lengths in pixels.
    Returns:
        [N,3] smplx ``transl`` (metres) in the camera optical frame (x right, y down, z forward).
    """
    s, tx, ty = cam.unbind(-1)
    # Guard against a non-positive scale (untrained weights): keep depth finite and positive.
    s = s.abs().clamp_min(1e-4)
    half_scale = sides * s / 2                              # pixels per metre at the root depth
    f_mean = (intrinsics.fx + intrinsics.fy) / 2
    tz = f_mean / half_scale
    u0 = centres[:, 0] + half_scale * tx                     # where the body origin is seen
    v0 = centres[:, 1] + half_scale * ty
    return torch.stack(((u0 - intrinsics.cx) * tz / intrinsics.fx,
                        (v0 - intrinsics.cy) * tz / intrinsics.fy, tz), dim=-1)


def project(points: torch.Tensor, intrinsics: Intrinsics) -> torch.Tensor:
    """Pinhole projection of camera-frame points [..., 3] → pixels [..., 2]."""
    z = points[..., 2].clamp_min(1e-6)
    u = intrinsics.fx * points[..., 0] / z + intrinsics.cx
    v = intrinsics.fy * points[..., 1] / z + intrinsics.cy
    return torch.stack((u, v), dim=-1)
