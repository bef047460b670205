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
   body, returns PARE's own (s, tx, ty) (three Newton steps on three equations).

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


def project(points: torch.Tensor, intrinsics: Intrinsics) -> torch.Tensor:
    """Pinhole projection of camera-frame points [..., 3] → pixels [..., 2]."""
    z = points[..., 2].clamp_min(1e-6)
    u = intrinsics.fx * points[..., 0] / z + intrinsics.cx
    v = intrinsics.fy * points[..., 1] / z + intrinsics.cy
    return torch.stack((u, v), dim=-1)


# PARE's crop camera (reference spec §3.4): perspective, f = 5000 px for the 224-px crop, principal
# point at the crop centre, body at depth 2·5000/(224·s); 2D keypoints divided by 112.
PARE_FOCAL = 5000.0
PARE_CROP = 224.0


def pare_crop_projection(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """PARE's own projection (its ``smpl_joints2d``) of crop-frame body points.

    Args:
        points: [N,K,3] SMPL output with PARE's (crop-frame) root rotation, no translation (m).
        cam: [N,3] (s, tx, ty).
    Returns:
        [N,K,2] normalised crop coordinates in [-1, 1] (source pixel = centre + side/2 · value).
    """
    s, tx, ty = cam.unbind(-1)
    tz = 2 * PARE_FOCAL / (PARE_CROP * s.abs().clamp_min(1e-4))
    t = torch.stack((tx, ty, tz), dim=-1)[:, None]
    p = points + t
    return PARE_FOCAL / (PARE_CROP / 2) * p[..., :2] / p[..., 2:].clamp_min(1e-6)


def pixel_rays(pixels: torch.Tensor, intrinsics: Intrinsics) -> torch.Tensor:
    """Unit rays [..., 3] (camera optical frame) through source pixels [..., 2]."""
    x = (pixels[..., 0] - intrinsics.cx) / intrinsics.fx
    y = (pixels[..., 1] - intrinsics.cy) / intrinsics.fy
    d = torch.stack((x, y, torch.ones_like(x)), dim=-1)
    return d / d.norm(dim=-1, keepdim=True)


def ray_rotation(pixels: torch.Tensor, intrinsics: Intrinsics) -> torch.Tensor:
    """The smallest rotation [..., 3, 3] taking the optical axis (0, 0, 1) onto the ray through
    each pixel [..., 2]: axis z × d, angle acos(d_z) (Rodrigues; d_z > 0 so it never flips)."""
    d = pixel_rays(pixels, intrinsics)
    dx, dy, dz = d.unbind(-1)
    zero = torch.zeros_like(dx)
    # k = z × d = (−d_y, d_x, 0), |k| = sin θ; R = I + [k]× + [k]×² / (1 + cos θ).
    k = torch.stack((zero, zero, dx, zero, zero, dy, -dx, -dy, zero), dim=-1)
    k = k.reshape(*d.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=d.dtype, device=d.device).expand_as(k)
    return eye + k + (k @ k) / (1 + dz)[..., None, None]


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

    Args:
        root_rotmats: [N,3,3] PARE's global orientation (crop frame).
        cam: [N,3] (s, tx, ty); centres: [N,2] crop centres (source px); sides: [N] crop sides (px).
        rest_root: [N,3] shaped rest pelvis J(β)₀ (``BodyModel.rest_joints[:, 0]``).
        keypoints_crop: [N,K,3] SMPL output points with the crop-frame root (no translation) to
            refine the translation on (PARE's 2D-supervised joints, ``joints49[:, 25:]``); None:
            no refinement.
        iterations: reweighting passes of the refinement.
        match_iterations: Newton steps of the self-consistency step (0: skip it), see
            :func:`_match_crop_camera`.
    Returns:
        :class:`CameraPlacement` (same dtype as ``cam``).
    """
    dtype = cam.dtype
    c = centres.to(torch.float64)
    half_scale = sides.to(torch.float64) * cam[:, 0].to(torch.float64).abs().clamp_min(1e-4) / 2
    j0 = rest_root.to(torch.float64)
    r_ray = ray_rotation(c, intrinsics)
    global_orient = r_ray @ root_rotmats.to(torch.float64)
    # Pelvis: on the ray through the pixel where PARE's camera puts it (crop frame: J0 + t) ...
    pelvis_px = c + half_scale[:, None] * (j0[:, :2] + cam[:, 1:].to(torch.float64))
    d = pixel_rays(pelvis_px, intrinsics)
    # ... at the distance where the pinhole's local area scale sqrt(fx·fy)/(r·d_z^1.5) px/m
    # matches PARE's side·s/2 (on the axis: r = f/(side·s/2), the former depth).
    distance = math.sqrt(intrinsics.fx * intrinsics.fy) / (half_scale * d[:, 2] ** 1.5)
    transl = d * distance[:, None] - j0
    if keypoints_crop is not None:
        transl = _refine_translation(keypoints_crop.to(torch.float64), cam.to(torch.float64), c,
                                     sides.to(torch.float64), intrinsics, r_ray, j0, transl,
                                     iterations)
        if match_iterations > 0:
            transl = _match_crop_camera(keypoints_crop.to(torch.float64), cam.to(torch.float64), c,
                                        sides.to(torch.float64), intrinsics, r_ray, j0, transl,
                                        match_iterations)
    return CameraPlacement(r_ray.to(dtype), global_orient.to(dtype), transl.to(dtype), rest_root.to(dtype))


def _refine_translation(points_crop, cam, centres, sides, intrinsics, r_ray, j0, transl, iterations):
    """Translation [N,3] whose real-camera projection of the ray-rotated keypoints best matches
    PARE's own 2D keypoints in the image.

    For a point P + T and its target pixel (u, v): fx·(X+Tx) − (u−cx)·(Z+Tz) = 0 and
    fy·(Y+Ty) − (v−cy)·(Z+Tz) = 0 are linear in T; weighting each by 1/(Z+Tz) of the previous
    estimate makes the residual a pixel error (Gauss-Newton on the reprojection error). A tiny
    pull towards the previous estimate keeps the 3×3 system regular for degenerate inputs.
    """
    target = centres[:, None] + sides[:, None, None] / 2 * pare_crop_projection(points_crop, cam)
    p = (points_crop - j0[:, None]) @ r_ray.transpose(1, 2) + j0[:, None]       # [N,K,3], no transl
    du = target[..., 0] - intrinsics.cx
    dv = target[..., 1] - intrinsics.cy
    zeros, fx, fy = torch.zeros_like(du), torch.full_like(du, intrinsics.fx), torch.full_like(du, intrinsics.fy)
    a = torch.cat((torch.stack((fx, zeros, -du), -1), torch.stack((zeros, fy, -dv), -1)), dim=1)  # [N,2K,3]
    b = torch.cat((du * p[..., 2] - intrinsics.fx * p[..., 0],
                   dv * p[..., 2] - intrinsics.fy * p[..., 1]), dim=1)                          # [N,2K]
    eye = torch.eye(3, dtype=a.dtype, device=a.device)
    for _ in range(iterations):
        w = 1.0 / (p[..., 2] + transl[:, None, 2]).clamp_min(1e-3)                            # [N,K]
        w2 = torch.cat((w, w), dim=1) ** 2
        ata = torch.einsum("nki,nk,nkj->nij", a, w2, a)
        atb = torch.einsum("nki,nk,nk->ni", a, w2, b)
        ridge = 1e-9 * ata.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-12)[:, None, None]
        new = torch.linalg.solve_ex(ata + ridge * eye, (atb + ridge[:, :, 0] * transl)[..., None])[0][..., 0]
        # Keep the body in front of the camera whatever the inputs (untrained weights).
        ok = torch.isfinite(new).all(-1, keepdim=True) & ((new[:, 2:3] + p[..., 2].min(1, keepdim=True).values) > 1e-2)
        transl = torch.where(ok, new, transl)
    return transl


def fit_crop_camera(points_crop: torch.Tensor, crop_xy: torch.Tensor) -> torch.Tensor:
    """The (s, tx, ty) [N,3] of PARE's crop camera that best explains crop coordinates
    ``crop_xy`` [N,K,2] ([-1, 1]) of crop-frame points ``points_crop`` [N,K,3].

    PARE's camera gives x = s·(X + tx) / (1 + s·Z/k), k = 5000/112; multiplied out,
    s·(X − x·Z/k) + (s·tx) = x is linear in (s, s·tx, s·ty): a 3×3 normal-equation solve.
    """
    k = PARE_FOCAL / (PARE_CROP / 2)
    x, y = crop_xy.unbind(-1)
    ones, zeros = torch.ones_like(x), torch.zeros_like(x)
    a = torch.cat((torch.stack((points_crop[..., 0] - x * points_crop[..., 2] / k, ones, zeros), -1),
                   torch.stack((points_crop[..., 1] - y * points_crop[..., 2] / k, zeros, ones), -1)), 1)
    b = torch.cat((x, y), dim=1)
    sol = torch.linalg.solve_ex(a.transpose(1, 2) @ a, a.transpose(1, 2) @ b[..., None])[0][..., 0]
    s = sol[:, 0]
    return torch.stack((s, sol[:, 1] / s, sol[:, 2] / s), dim=-1)


def _match_crop_camera(points_crop, cam, centres, sides, intrinsics, r_ray, j0, transl, iterations):
    """Translation [N,3] for which PARE's own camera, fitted to the real projection of the body,
    is the camera PARE predicted (Newton on T, forward-difference Jacobian).

    PARE was trained to output the crop camera that best explains the keypoints it sees, and
    the real crop shows the body through the real perspective camera (stretched off the axis,
    nearer parts larger). So the right T is the one whose real image, explained by PARE's
    camera model, gives back PARE's (s, tx, ty): three equations for three unknowns. The
    least-squares refinement before it is the start (within centimetres). The base point and
    its three perturbations are evaluated as one batch; solves use ``solve_ex`` (no host sync).
    """
    n = transl.shape[0]
    p = (points_crop - j0[:, None]) @ r_ray.transpose(1, 2) + j0[:, None]       # no transl
    p4, crop4, c4, half4 = (x.repeat(4, *([1] * (x.dim() - 1)))
                            for x in (p, points_crop, centres, sides / 2))
    eps = 1e-5
    offsets = torch.cat((torch.zeros(1, 3, dtype=transl.dtype, device=transl.device),
                         eps * torch.eye(3, dtype=transl.dtype, device=transl.device)))   # [4,3]
    target = torch.stack((cam[:, 0].abs().clamp_min(1e-6).log(), cam[:, 1], cam[:, 2]), -1)
    nearest = p[..., 2].min(1).values
    for _ in range(iterations):
        t4 = (transl[None] + offsets[:, None]).reshape(4 * n, 3)
        uv = project(p4 + t4[:, None], intrinsics)
        fitted = fit_crop_camera(crop4, (uv - c4[:, None]) / half4[:, None, None])
        res = torch.stack((fitted[:, 0].abs().clamp_min(1e-6).log(), fitted[:, 1], fitted[:, 2]), -1)
        res = res.reshape(4, n, 3) - target
        jac = ((res[1:] - res[:1]) / eps).permute(1, 2, 0)                         # [N,3,3]
        step, info = torch.linalg.solve_ex(jac, res[0][..., None])
        step = step[..., 0]
        new = transl - step
        # Accept finite steps that keep the body in front and do not jump (untrained weights).
        ok = (info == 0) & torch.isfinite(new).all(-1) & ((new[:, 2] + nearest) > 1e-2) & \
            (step.norm(dim=-1) < 0.5 * transl[:, 2].abs().clamp_min(0.1))
        transl = torch.where(ok[:, None], new, transl)
    return transl
