"""Pinhole intrinsics and the placement of PARE's crop-frame body in the real camera.

PARE sees a person through a square crop and predicts, as it was trained to (reference spec
§3.4), a body whose global orientation is the one *seen in the crop* — as if the person stood on
the optical axis of a camera looking through the crop centre — and a weak-perspective camera
(s, tx, ty): a body point X (m, crop frame, pelvis at J(β)₀) lands at crop pixel
``112 + 112·s·(X_xy + t)``, i.e. at source pixel ``centre + side/2 · s · (X_xy + t)``.

:func:`crop_to_camera` puts that body into the real camera (docs/geometry.md):

1. **Ray rotation.** ``R_ray`` takes the optical axis onto the ray through the crop centre
   (smallest such rotation); the camera-frame orientation is ``R_ray · R_crop`` and the whole
   crop-frame body turns rigidly about the camera centre with it.
2. **Root placement.** The pelvis lies on the ray through the pixel where PARE's camera puts it,
   at the distance where the real camera's local scale (area scale of the pinhole projection
   at that ray, ``sqrt(fx·fy)/(r·d_z^1.5)`` px/m) equals PARE's ``side·s/2``.
3. **Refinement** (given the keypoints; on by default in the estimator): the translation that
   makes the corrected 3D keypoints project, with the real intrinsics, onto PARE's own 2D
   keypoints (a 3-unknown weighted linear least-squares problem per person, two reweighting
   passes), then the translation for which PARE's camera model, fitted to the real image of the
   body, returns PARE's own (s, tx, ty) (up to three Newton steps on three equations).

All of it runs in float64 on the host: NumPy over the keypoints and LAPACK for the 3×3 solves
(a hundred-odd tiny array operations for a handful of people, far cheaper there than as Torch
ops or GPU launches; step 3 is :mod:`pare_ros.placement_refine`); what is per person — rays,
rotations, the 3×3 systems, acceptance tests, the stop rule — in Python floats, since a few
dozen float operations cost less than one NumPy call's overhead. Those are the same IEEE
operations in the same order as the array form they replaced, so the results are bit for bit
the same (test/test_camera_equivalence.py).

:func:`crop_cam_to_translation` is the former pass-through conversion (orientation unchanged,
depth from the mean focal length), kept for comparison (scripts/geometry_sweep.py).
The principal point always comes from CameraInfo, not from the image centre PARE's demo assumes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .placement_refine import PARE_CROP, PARE_FOCAL, match_crop_camera, refine_translation


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
    """Weak-perspective crop cameras → translations, *without* the ray rotation (the former
    conversion; exact only for a flat body facing the camera on the optical axis).

    The body origin reprojects onto its weak-perspective image position, at the depth
    ``f̄ / (side·s/2)`` with f̄ = (fx + fy)/2.

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


def project(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Pinhole projection of camera-frame points [..., 3] → pixels [..., 2] (NumPy)."""
    z = np.maximum(points[..., 2:], 1e-6)
    return points[..., :2] / z * (intrinsics.fx, intrinsics.fy) + (intrinsics.cx, intrinsics.cy)



def pare_crop_projection(points, cam):
    """PARE's own projection (its ``smpl_joints2d``) of crop-frame body points; NumPy arrays or
    Torch tensors, returned as the same kind.

    Args:
        points: [N,K,3] SMPL output with PARE's (crop-frame) root rotation, no translation (m).
        cam: [N,3] (s, tx, ty).
    Returns:
        [N,K,2] normalised crop coordinates in [-1, 1] (source pixel = centre + side/2 · value).
    """
    clamp_min = np.maximum if isinstance(cam, np.ndarray) else torch.clamp_min
    tz = 2 * PARE_FOCAL / (PARE_CROP * clamp_min(abs(cam[:, 0:1]), 1e-4))         # [N,1]
    depth = clamp_min((points[..., 2] + tz)[..., None], 1e-6)
    return PARE_FOCAL / (PARE_CROP / 2) * (points[..., :2] + cam[:, None, 1:]) / depth


def _pixel_rays(pixels: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Unit rays [..., 3] (camera optical frame) through source pixels [..., 2]."""
    d = np.ones((*pixels.shape[:-1], 3))
    d[..., :2] = (pixels - (intrinsics.cx, intrinsics.cy)) / (intrinsics.fx, intrinsics.fy)
    return d / np.sqrt((d * d).sum(-1, keepdims=True))


def ray_rotation(pixels, intrinsics: Intrinsics):
    """The smallest rotation [..., 3, 3] taking the optical axis (0, 0, 1) onto the ray through
    each pixel [..., 2]: axis z × d, angle acos(d_z) (Rodrigues; d_z > 0 so it never flips).
    NumPy in → NumPy out (float64); a Torch tensor in → a tensor of its dtype and device."""
    if isinstance(pixels, torch.Tensor):
        return torch.from_numpy(ray_rotation(_host64(pixels), intrinsics)).to(pixels)
    d = _pixel_rays(pixels, intrinsics)
    # R = I + [k]× + [k]×²/(1 + cos θ) with k = z × d = (−d_y, d_x, 0), written out: the top-left
    # 2×2 block I − d_xy·d_xyᵀ/(1 + d_z), the last column d, the last row (−d_x, −d_y, d_z).
    r = np.empty((*pixels.shape[:-1], 3, 3))
    dxy = d[..., :2]
    r[..., :2, :2] = np.eye(2) - dxy[..., :, None] * (dxy / (1 + d[..., 2:]))[..., None, :]
    r[..., :, 2] = d
    r[..., 2, :2] = -dxy
    return r


@dataclass
class CameraPlacement:
    """Where a crop-frame body goes in the camera optical frame (batched, N people).

    ray_rotation [N,3,3]: R_ray; global_orient [N,3,3]: camera-frame root rotation R_ray·R_crop;
    transl [N,3]: smplx ``transl`` (m) for that orientation; rest_root [N,3]: J(β)₀.
    """

    ray_rotation: torch.Tensor
    global_orient: torch.Tensor
    transl: torch.Tensor
    rest_root: torch.Tensor

    def apply(self, points_crop: torch.Tensor) -> torch.Tensor:
        """Crop-frame SMPL output points [N,K,3] (no translation) → camera frame [N,K,3]:
        the rigid turn by R_ray about the pelvis plus ``transl``, which equals re-running SMPL
        with ``global_orient`` (SMPL rotates the whole body about the pelvis, pose blend shapes
        ignore the root)."""
        j0 = self.rest_root[:, None]
        return (points_crop - j0) @ self.ray_rotation.transpose(1, 2) + j0 + self.transl[:, None]


def crop_to_camera(root_rotmats: torch.Tensor, cam: torch.Tensor, centres: torch.Tensor,
                   sides: torch.Tensor, intrinsics: Intrinsics, rest_root: torch.Tensor,
                   keypoints_crop: Optional[torch.Tensor] = None,
                   iterations: int = 2, match_iterations: int = 3) -> CameraPlacement:
    """PARE's crop-frame root rotation and weak-perspective camera → camera-frame placement.

    Computed in float64 on the host (module docstring). Pass host tensors (the estimator
    copies its inputs over once, with everything else it needs on the host); device tensors are
    copied one by one.

    Args:
        root_rotmats: [N,3,3] PARE's global orientation (crop frame).
        cam: [N,3] (s, tx, ty); centres: [N,2] crop centres (source px); sides: [N] crop sides (px).
        rest_root: [N,3] shaped rest pelvis J(β)₀ (``BodyModel.rest_joints[:, 0]``).
        keypoints_crop: [N,K,3] SMPL output points with the crop-frame root (no translation) to
            refine the translation on (PARE's 2D-supervised joints, ``joints49[:, 25:]``); None:
            no refinement.
        iterations: reweighting passes of the refinement.
        match_iterations: at most this many Newton steps of the self-consistency step (0: skip
            it), see :func:`~pare_ros.placement_refine.match_crop_camera`.
    Returns:
        :class:`CameraPlacement` (dtype and device of ``cam``; ``rest_root`` as given).
    """
    cam64, c, sides64, j0 = (_host64(x) for x in (cam, centres, sides, rest_root))
    r_ray, transl = _place_on_rays(cam64, c, sides64, j0, intrinsics)
    global_orient = r_ray @ _host64(root_rotmats)
    if keypoints_crop is not None:
        # Coordinate-major [N,3,K] (sums over the keypoints run along the last axis): the
        # crop-frame keypoints and the same turned onto the ray about the pelvis, untranslated.
        points = _host64(keypoints_crop).transpose(0, 2, 1)
        turned = r_ray @ (points - j0[..., None]) + j0[..., None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            transl = refine_translation(points, turned, cam64, c, sides64, intrinsics, transl, iterations)
            if match_iterations > 0:
                transl = match_crop_camera(points, turned, cam64, c, sides64, intrinsics, transl,
                                            match_iterations)
    if cam.dtype == torch.float64 and cam.device.type == "cpu":      # the estimator's case
        out = (torch.from_numpy(x) for x in (r_ray, global_orient, transl))
    else:
        out = (torch.from_numpy(x).to(device=cam.device, dtype=cam.dtype) for x in (r_ray, global_orient, transl))
    return CameraPlacement(*out, rest_root)


def _place_on_rays(cam: np.ndarray, centres: np.ndarray, sides: np.ndarray, rest_root: np.ndarray,
                   intrinsics: Intrinsics):
    """Steps 1 and 2 of :func:`crop_to_camera`: R_ray [N,3,3] of the crop centres and the
    translation [N,3] putting the pelvis on its ray at PARE's scale.

    Per person in Python floats (a few dozen operations each cost less than one NumPy call on
    [N] arrays, for a handful of people), the same IEEE operations in the same order as
    :func:`ray_rotation` and :func:`_pixel_rays` on arrays.
    """
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    focal = math.sqrt(fx * fy)
    rotations, transl = [], []
    for (s, tx, ty), (u, v), side, (jx, jy, jz) in zip(cam.tolist(), centres.tolist(), sides.tolist(),
                                                       rest_root.tolist()):
        dx, dy, dz = _ray(u, v, fx, fy, cx, cy)
        k = 1 + dz
        rotations.append((1.0 - dx * (dx / k), 0.0 - dx * (dy / k), dx,
                          0.0 - dy * (dx / k), 1.0 - dy * (dy / k), dy, -dx, -dy, dz))
        half_scale = side * max(abs(s), 1e-4) / 2                             # px per metre
        # Pelvis: on the ray through the pixel where PARE's camera puts it (crop frame: J0 + t),
        # at the distance where the pinhole's local area scale sqrt(fx·fy)/(r·d_z^1.5) px/m
        # matches PARE's side·s/2 (on the axis: r = f/(side·s/2), the former depth).
        dx, dy, dz = _ray(u + half_scale * (jx + tx), v + half_scale * (jy + ty), fx, fy, cx, cy)
        scale = half_scale * dz ** 1.5
        distance = focal / scale if scale != 0.0 else math.copysign(math.inf, scale)   # NumPy's x/0
        transl.append((dx * distance - jx, dy * distance - jy, dz * distance - jz))
    return np.array(rotations).reshape(-1, 3, 3), np.array(transl).reshape(-1, 3)


def _ray(u: float, v: float, fx: float, fy: float, cx: float, cy: float) -> tuple:
    """The unit ray (dx, dy, dz) through pixel (u, v): :func:`_pixel_rays` for one pixel."""
    x, y = (u - cx) / fx, (v - cy) / fy
    norm = math.sqrt(x * x + y * y + 1.0)
    return x / norm, y / norm, 1.0 / norm


def _host64(x) -> np.ndarray:
    """A tensor (any device) or array → float64 NumPy on the host."""
    if isinstance(x, torch.Tensor):
        try:
            x = x.numpy()                        # a host tensor: a view, the common case
        except (RuntimeError, TypeError):        # on a device or requiring grad
            x = x.numpy(force=True)
    else:
        x = np.asarray(x)
    return x if x.dtype == np.float64 else x.astype(np.float64)
