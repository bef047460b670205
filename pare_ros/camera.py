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
ops or GPU launches); what is per person — rays, rotations, the 3×3 systems, acceptance tests,
the stop rule — in Python floats, since a few dozen float operations cost less than one NumPy
call's overhead. Those are the same IEEE operations in the same order as the array form they
replaced, so the results are bit for bit the same (test/test_camera_equivalence.py).

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


def project(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Pinhole projection of camera-frame points [..., 3] → pixels [..., 2] (NumPy)."""
    z = np.maximum(points[..., 2:], 1e-6)
    return points[..., :2] / z * (intrinsics.fx, intrinsics.fy) + (intrinsics.cx, intrinsics.cy)


# PARE's crop camera (reference spec §3.4): perspective, f = 5000 px for the 224-px crop, principal
# point at the crop centre, body at depth 2·5000/(224·s); 2D keypoints divided by 112.
PARE_FOCAL = 5000.0
PARE_CROP = 224.0


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
            it), see :func:`_match_crop_camera`.
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
            transl = _refine_translation(points, turned, cam64, c, sides64, intrinsics, transl, iterations)
            if match_iterations > 0:
                transl = _match_crop_camera(points, turned, cam64, c, sides64, intrinsics, transl,
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


def _solve(m: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve of m [N,3,3] · x = b [N,3] → x [N,3] (LAPACK); NaN for a singular m (which
    callers reject, leaving that person as it was)."""
    try:
        return np.linalg.solve(m, b[..., None])[..., 0]
    except np.linalg.LinAlgError:                # rare (degenerate inputs): find which one(s)
        if len(m) == 1:
            return np.full_like(b, np.nan)
        return np.concatenate([_solve(m[i:i + 1], b[i:i + 1]) for i in range(len(m))])


def _refine_translation(points, turned, cam, centres, sides, intrinsics, transl, iterations):
    """Translation [N,3] whose real-camera projection of the ray-turned keypoints ``turned``
    [N,3,K] best matches PARE's own 2D keypoints (of the crop-frame ``points`` [N,3,K]).

    For a point P + T and its target pixel (u, v): fx·(X+Tx) − (u−cx)·(Z+Tz) = 0 and
    fy·(Y+Ty) − (v−cy)·(Z+Tz) = 0 are linear in T; weighting each by 1/(Z+Tz) of the previous
    estimate makes the residual a pixel error (Gauss-Newton on the reprojection error). A tiny
    pull towards the previous estimate keeps the 3×3 system regular for degenerate inputs.

    With rows (fx, 0, −du), (0, fy, −dv) and right-hand sides b = (du·Z − fx·X, dv·Z − fy·Y), the
    normal equations are AᵀA = [[fx²·S, 0, −fx·Su], [0, fy²·S, −fy·Sv], [−fx·Su, −fy·Sv, Sd]],
    Aᵀb = (fx·Sbu, fy·Sbv, −Sdb) with S = Σw², Su = Σw²·du, Sd = Σw²·(du² + dv²), Sbu = Σw²·b_u,
    Sdb = Σw²·(du·b_u + dv·b_v), …: seven weighted sums over the keypoints per iteration (one
    NumPy product), the systems assembled per person in Python floats and solved by LAPACK.

    That system is ill-conditioned for a small, far body (its keypoints nearly on one ray), so
    its solution there depends on rounding at ~1e-8 relative: the sums and the assembly are the
    operations, in the order, of the array form this replaced, which keeps its results exactly.
    """
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    # PARE's own 2D keypoints in pixels from (cx, cy): d = (u − cx) + side/2 · crop_xy with
    # crop_xy = 5000/112 · (P_xy + t) / (P_z + tz) (pare_crop_projection); per person t, tz,
    # u − cx, v − cy and side/2 as columns [N,6,1].
    columns = np.array([(tx, ty, 2 * PARE_FOCAL / (PARE_CROP * max(abs(s), 1e-4)), u - cx, v - cy, side / 2)
                        for (s, tx, ty), (u, v), side in zip(cam.tolist(), centres.tolist(), sides.tolist())])
    columns = columns.reshape(-1, 6)[..., None]
    crop_xy = PARE_FOCAL / (PARE_CROP / 2) * (points[:, :2] + columns[:, :2]) \
        / np.maximum(points[:, 2:] + columns[:, 2:3], 1e-6)                     # [N,2,K]
    d = columns[:, 3:5] + columns[:, 5:] * crop_xy
    z = turned[:, 2:]                                                           # [N,1,K]
    b = d * z - np.array(((fx,), (fy,))) * turned[:, :2]                        # [N,2,K]
    dd, db = d * d, d * b
    terms = np.concatenate((np.ones(z.shape), d, dd[:, :1] + dd[:, 1:], b, db[:, :1] + db[:, 1:]),
                           axis=1)                                              # [N,7,K]
    nearest = np.minimum.reduce(z, -1).tolist()                                 # [N][1]
    ffx, ffy = fx * fx, fy * fy
    transl = transl.tolist()
    for _ in range(iterations):
        w2 = 1.0 / np.maximum(z + np.array([t[2] for t in transl])[:, None, None], 1e-3) ** 2   # [N,1,K]
        systems, rhs = [], []
        for (s, su, sv, sd, sbu, sbv, sdb), t in zip(np.add.reduce(terms * w2, -1).tolist(), transl):
            a, e, p, q = s * ffx, s * ffy, su * -fx, sv * -fy
            ridge = 1e-9 * max(a + e + sd, 1e-12)                                  # 1e-9 · trace
            systems.append((a + ridge, 0.0, p, 0.0, e + ridge, q, p, q, sd + ridge))
            rhs.append((sbu * fx + ridge * t[0], sbv * fy + ridge * t[1], -sdb + ridge * t[2]))
        solved = _solve(np.array(systems).reshape(-1, 3, 3), np.array(rhs).reshape(-1, 3)).tolist()
        # Keep the body in front of the camera whatever the inputs (untrained weights).
        transl = [new if math.isfinite(new[0]) and math.isfinite(new[1]) and math.isfinite(new[2])
                  and new[2] + near > 1e-2 else t for new, t, (near,) in zip(solved, transl, nearest)]
    return np.array(transl).reshape(-1, 3)


def _fit_crop_camera(points_xy: np.ndarray, points_z: np.ndarray, crop_xy: np.ndarray) -> np.ndarray:
    """(log s, tx, ty) [...,3] of PARE's crop camera that best explains crop coordinates
    ``crop_xy`` [...,2,K] ([-1, 1]) of crop-frame points (``points_xy`` [...,2,K], ``points_z``
    [...,1,K] divided by k = 5000/112; coordinate-major, leading dimensions broadcast).

    PARE's camera gives x = s·(X + tx) / (1 + s·Z/k); multiplied out, s·(X − x·Z/k) + s·tx = x
    is linear in (s, s·tx, s·ty). Its least-squares solution in closed form: s·tx, s·ty are the
    means of x − s·a (a = X − x·Z/k, likewise for y), and s the slope of crop_xy on a about their
    means (the 3×3 normal equations with those two eliminated).
    """
    k = crop_xy.shape[-1]
    a = points_xy - crop_xy * points_z                                          # [...,2,K]
    a_mean = np.add.reduce(a, -1) / k                                           # [...,2]
    a_c = a - a_mean[..., None]
    lead = a.shape[:-2]
    s = np.add.reduce((a_c * crop_xy).reshape(*lead, -1), -1) / np.add.reduce((a_c * a_c).reshape(*lead, -1), -1)
    out = np.empty(lead + (3,))
    out[..., 0] = np.log(np.maximum(np.abs(s), 1e-6))
    out[..., 1:] = np.add.reduce(crop_xy, -1) / (k * s[..., None]) - a_mean
    return out


# Forward-difference offsets of T for the match's Jacobian: the base point and one per axis.
_FD_EPS = 1e-5
_FD_OFFSETS = np.concatenate((np.zeros((1, 1, 3)), _FD_EPS * np.eye(3)[:, None]))   # [4,1,3]
# A Newton step below this (m) for everyone ends the match early.
_CONVERGED = 1e-4


def _match_crop_camera(points, turned, cam, centres, sides, intrinsics, transl, iterations):
    """Translation [N,3] for which PARE's own camera, fitted to the real projection of the body,
    is the camera PARE predicted (at most ``iterations`` Newton steps on T, forward-difference
    Jacobian). ``points``, ``turned``: [N,3,K] as in :func:`_refine_translation`.

    PARE was trained to output the crop camera that best explains the keypoints it sees, and
    the real crop shows the body through the real perspective camera (stretched off the axis,
    nearer parts larger). So the right T is the one whose real image, explained by PARE's
    camera model, gives back PARE's (s, tx, ty): three equations for three unknowns. The
    least-squares refinement before it is the start (within centimetres). The base point and
    its three perturbations are evaluated as one batch [4,N]; each person's step is accepted,
    and the stop rule read, in Python floats.

    The Newton steps end by a threshold, so the arrays are the operations, in the order, of the
    array form this replaced (the same steps, bit for bit); only per-person scalars moved.
    """
    # Pixel → crop coordinates: (uv − centre)/(side/2), with uv = f·xy/z + c folded in.
    half = sides[:, None, None] / 2
    scale = np.array(((intrinsics.fx,), (intrinsics.fy,))) / half               # [N,2,1]
    shift = (np.array(((intrinsics.cx,), (intrinsics.cy,))) - centres[..., None]) / half  # [N,2,1]
    points_xy, points_z = points[:, :2], points[:, 2:] / (PARE_FOCAL / (PARE_CROP / 2))
    nearest = np.minimum.reduce(turned[:, 2], -1).tolist()
    target = np.empty_like(cam)
    target[:, 0] = np.log(np.maximum(np.abs(cam[:, 0]), 1e-6))
    target[:, 1:] = cam[:, 1:]
    transl = np.asarray(transl)
    for _ in range(iterations):
        p = turned + (transl + _FD_OFFSETS)[..., None]
        crop_xy = p[:, :, :2] / np.maximum(p[:, :, 2:], 1e-6) * scale + shift
        res = _fit_crop_camera(points_xy, points_z, crop_xy) - target            # [4,N,3]
        steps = _solve(((res[1:] - res[0]) / _FD_EPS).transpose(1, 2, 0), res[0]).tolist()
        kept, converged = [], True
        for t, (sx, sy, sz), near in zip(transl.tolist(), steps, nearest):
            step2 = sx * sx + sy * sy + sz * sz
            # Accept steps that keep the body in front and do not jump (untrained weights): a
            # non-finite step fails the second test, as a NaN/inf translation does.
            if t[2] - sz + near > 1e-2 and step2 < 0.25 * max(t[2] * t[2], 0.01):   # |step| < max(|Tz|, 0.1)/2
                t = [t[0] - sx, t[1] - sy, t[2] - sz]
            kept.append(t)
            # Converged: Newton's next step would be ~|step|² (< 1e-8 m here), far below 1e-6 m
            # (written so that a NaN step does not count as converged).
            converged = converged and step2 < _CONVERGED ** 2
        transl = np.array(kept).reshape(-1, 3)
        if converged:
            break
    return transl
