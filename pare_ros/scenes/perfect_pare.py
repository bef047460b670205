"""What a *perfect* PARE would output for a crop of a ground-truth body, as a ``Backend``.

PARE only ever sees the crop: it cannot know where in the image the crop was, so the global
orientation it can learn is the one the crop *shows*, i.e. the orientation seen by a camera
looking through the crop centre. Its camera is trained (reference spec §10.1) to make the crop
camera — perspective, f = 5000 px for the 224-px crop, principal point at the crop centre,
translation (tx, ty, 2·5000/(224·s)) — project its body onto the person's 2D keypoints in
[-1, 1] crop coordinates (L_2D, on the 24 ground-truth joints 25–48 of its 49). A perfect PARE
therefore gives:

- ``pred_pose[1:]``, ``pred_shape``: the true articulation and shape (independent of where the
  person stands);
- ``pred_pose[0]``: the true orientation seen from the *view camera*, the camera turned by the
  smallest rotation that takes its optical axis onto the ray through the crop centre (computed
  here with :meth:`scipy.spatial.transform.Rotation.align_vectors`, not with the code under test);
- ``pred_cam`` (s, tx, ty): the least-squares fit (:func:`scipy.optimize.least_squares`) of PARE's
  crop camera to the true image projections of those keypoints, for that orientation — the
  weak-perspective camera that best explains the projected body;
- ``pred_segm_mask``: 25×56×56 logits with the true part label (nearest surface point) winning
  where the projected mesh lies, background elsewhere.

Other ``orientation`` modes: ``"identity"`` reports the identity root rotation (the stand-in for
checking that an identity crop orientation ends up on the crop's ray); ``"fit2d"`` also fits the
orientation to the 2D keypoints. The latter is *not* a perfect network: 2D keypoints fix an
out-of-plane turn only to second order (a flat body tilted by θ shortens by 1 − cos θ), so the
few-pixel weak-perspective residual of a body at 2–5 m moves the best-fit orientation by several
degrees even on the optical axis (median 6° at 2 m, 4° at 5 m; docs/geometry.md).
See docs/geometry.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from ..camera import pare_crop_projection
from ..preprocessing import Crop, box_to_crop
from .bodies import SceneBody
from .types import SceneCamera

FIT_KEYPOINTS = slice(25, 49)     # PARE's 2D loss: ground-truth joints (OpenPose ones weigh 0)
SEGM_SIZE = 56


@dataclass(frozen=True)
class CropFit:
    """A perfect PARE's answer for one crop: root rotation (3,3) in the crop frame, camera
    (s, tx, ty), and the remaining 2D error (crop pixels of the 224 crop, RMS)."""

    crop: Crop
    root_rotation: np.ndarray
    cam: np.ndarray
    rms_crop_px: float


def _project(points_local: np.ndarray, rest_root: np.ndarray, rotation: np.ndarray,
             cam: np.ndarray) -> np.ndarray:
    """Crop-frame body (root ``rotation``) through PARE's crop camera → [-1, 1] coords [K,2]."""
    pts = points_local @ rotation.T + rest_root
    return pare_crop_projection(torch.from_numpy(pts)[None], torch.from_numpy(cam)[None])[0].numpy()


def view_rotation(pixel, camera: SceneCamera) -> np.ndarray:
    """(3,3) the smallest rotation taking the optical axis onto the ray through ``pixel``."""
    return Rotation.align_vectors([camera.ray(*pixel)], [[0.0, 0.0, 1.0]])[0].as_matrix()


FIT_POINTS = ("keypoints", "joints", "vertices")


def fit_crop(body: SceneBody, camera: SceneCamera, crop: Crop, orientation: str = "view",
             fit_points: str = "keypoints") -> CropFit:
    """A perfect PARE's root rotation (``orientation``: "view", "identity" or "fit2d", see the
    module docstring) and crop camera fitted to the true 2D projections of ``body``'s
    ``fit_points``: "keypoints" (PARE's L_2D set, joints 25–48 of the 49), "joints" (the 24
    SMPL joints) or "vertices" (the mesh: a silhouette-like fit)."""
    if orientation not in ("view", "identity", "fit2d"):
        raise ValueError(f"orientation must be 'view', 'identity' or 'fit2d', got {orientation!r}")
    if fit_points not in FIT_POINTS:
        raise ValueError(f"fit_points must be one of {FIT_POINTS}, got {fit_points!r}")
    local, points = {"keypoints": (body.local_keypoints[FIT_KEYPOINTS], body.keypoints[FIT_KEYPOINTS]),
                     "joints": (body.local_joints, body.joints),
                     "vertices": (body.local_vertices[::7], body.vertices[::7])}[fit_points]
    target = (camera.project(points) - (crop.cx, crop.cy)) / (crop.side / 2)

    def scale_start(rotation):
        # Weak perspective is linear in (s, s·tx, s·ty): x ≈ s·q + s·t.
        q = (local @ rotation.T + body.rest_root)[:, :2]
        a = np.zeros((2 * len(q), 3))
        a[0::2, 0], a[1::2, 0] = q[:, 0], q[:, 1]
        a[0::2, 1] = a[1::2, 2] = 1.0
        s, stx, sty = np.linalg.lstsq(a, target.reshape(-1), rcond=None)[0]
        s = max(abs(s), 1e-3)
        return np.array([s, stx / s, sty / s])

    def solve(rotation0, free_rotation):
        def rot_of(x):
            return Rotation.from_rotvec(x[3:]).as_matrix() @ rotation0 if free_rotation else rotation0

        def residual(x):
            return (_project(local, body.rest_root, rot_of(x), x[:3]) - target).ravel()

        x0 = np.r_[scale_start(rotation0), np.zeros(3 if free_rotation else 0)]
        res = least_squares(residual, x0, x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
        return rot_of(res.x), res.x[:3], float(np.sqrt(np.mean(res.fun ** 2)) * 112)

    seen = view_rotation((crop.cx, crop.cy), camera).T @ body.orientation
    if orientation == "identity":
        rot, cam, rms = solve(np.eye(3), free_rotation=False)
    elif orientation == "view":
        rot, cam, rms = solve(seen, free_rotation=False)
    else:
        # Two starts: the camera-frame orientation and the one seen from the view camera.
        fits = [solve(start, True) for start in (body.orientation, seen)]
        rot, cam, rms = min(fits, key=lambda f: f[2])
    return CropFit(crop, rot, cam, rms)


def segmentation_logits(body: SceneBody, fit: CropFit, vertex_parts: np.ndarray) -> np.ndarray:
    """[25,56,56] logits: the part of the nearest projected vertex wins (+8), background (+4)
    elsewhere; vertices are splatted far to near so nearer surfaces overwrite."""
    pts = body.local_vertices @ fit.root_rotation.T + body.rest_root
    xy = _project(body.local_vertices, body.rest_root, fit.root_rotation, fit.cam)
    grid = np.floor((xy + 1) / 2 * SEGM_SIZE).astype(int)
    inside = ((grid >= 0) & (grid < SEGM_SIZE)).all(1)
    order = np.argsort(-pts[:, 2])                       # far first
    order = order[inside[order]]
    label = np.zeros((SEGM_SIZE, SEGM_SIZE), dtype=int)
    label[grid[order, 1], grid[order, 0]] = vertex_parts[order] + 1
    logits = np.zeros((25, SEGM_SIZE, SEGM_SIZE), np.float32)
    logits[0] = 4.0
    rows, cols = np.nonzero(label)
    logits[label[rows, cols], rows, cols] = 8.0
    return logits


class PerfectPare:
    """A ``Backend`` for :class:`pare_ros.estimator.BodyEstimator` that answers, for the crops of
    ``bodies`` (in that order: pass ``self.boxes`` as the estimator's boxes), what a perfect PARE
    would (``orientation``, ``fit_points``: see :func:`fit_crop`). ``vertex_parts`` ([6890] part per vertex, ``BodyModel.vertex_parts``) enables the
    segmentation logits; without it they are all background.
    """

    def __init__(self, bodies: Sequence[SceneBody], camera: SceneCamera, box_scale: float = 1.0,
                 orientation: str = "view", vertex_parts: Optional[np.ndarray] = None,
                 fit_points: str = "keypoints") -> None:
        self.bodies = list(bodies)
        self.boxes = np.stack([b.box for b in self.bodies]) if self.bodies else np.zeros((0, 4))
        self.fits: List[CropFit] = [fit_crop(b, camera, box_to_crop(b.box, box_scale), orientation,
                                             fit_points) for b in self.bodies]
        pose = np.stack([b.rotmats for b in self.bodies]).copy() if self.bodies else np.zeros((0, 24, 3, 3))
        for i, fit in enumerate(self.fits):
            pose[i, 0] = fit.root_rotation
        segm = np.zeros((len(self.bodies), 25, SEGM_SIZE, SEGM_SIZE), np.float32)
        segm[:, 0] = 4.0
        if vertex_parts is not None:
            for i, (body, fit) in enumerate(zip(self.bodies, self.fits)):
                segm[i] = segmentation_logits(body, fit, np.asarray(vertex_parts))
        self.outputs: Dict[str, torch.Tensor] = {
            "pred_pose": torch.tensor(pose, dtype=torch.float32),
            "pred_shape": torch.tensor(np.stack([b.betas for b in self.bodies]) if self.bodies
                                       else np.zeros((0, 10)), dtype=torch.float32),
            "pred_cam": torch.tensor(np.stack([f.cam for f in self.fits]) if self.fits
                                     else np.zeros((0, 3)), dtype=torch.float32),
            "pred_segm_mask": torch.from_numpy(segm),
        }

    def __call__(self, batch: torch.Tensor) -> Dict[str, torch.Tensor]:
        if batch.shape[0] != len(self.bodies):
            raise ValueError(f"PerfectPare holds {len(self.bodies)} people but got a batch of "
                             f"{batch.shape[0]} crops: pass PerfectPare.boxes as the boxes")
        return {k: v.to(batch.device) for k, v in self.outputs.items()}
