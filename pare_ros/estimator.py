"""Image → bodies: the ROS-free PARE pipeline.

Given an image, person boxes and camera intrinsics, :class:`BodyEstimator` crops every person
like the reference demo, runs all crops through the network in one batch, runs SMPL once for
the batch and places each body in the camera optical frame with the real intrinsics
(:func:`pare_ros.camera.crop_to_camera`: PARE's crop-frame orientation turned onto the crop's
ray, translation refined under the real camera; docs/geometry.md).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from .camera import Intrinsics, crop_to_camera, pare_crop_projection, project
from .geometry import rotmat_to_axis_angle
from .preprocessing import CROP_SIZE, Crop, as_rgb, box_to_crop, crops_to_input
from .visibility import part_visibility

# A backend maps a normalised crop batch [N,3,224,224] to PARE's output dict
# (pred_pose, pred_shape, pred_cam, pred_segm_mask at least).
Backend = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


@dataclass
class BodyEstimate:
    """One person. 3D values in metres in the camera optical frame; 2D values in pixels.

    Shapes: betas (10,), rotmats (24,3,3), axis_angle (24,3) (root first: the camera-frame
    global orientation, i.e. PARE's crop-frame one turned onto the crop's ray; then each joint
    relative to its parent), transl (3,) smplx translation, joints3d (24,3) SMPL joints, keypoints3d
    (49,3) PARE's joint set, joints2d (24,2), keypoints2d (49,2), vertices (6890,3) or None,
    rest_joints (24,3) shaped rest-pose joints (for forward kinematics), part_attention
    (24,56,56) or None, part_segm_logits (25,56,56) or None, part_visibility (24,).
    """

    box: np.ndarray
    score: float
    crop: Crop
    cam_crop: np.ndarray
    betas: np.ndarray
    rotmats: np.ndarray
    axis_angle: np.ndarray
    transl: np.ndarray
    joints3d: np.ndarray
    keypoints3d: np.ndarray
    joints2d: np.ndarray
    keypoints2d: np.ndarray
    vertices: np.ndarray
    rest_joints: np.ndarray
    part_attention: np.ndarray
    part_segm_logits: np.ndarray
    part_visibility: np.ndarray
    truncation: float


@dataclass
class Estimates:
    """Result of one image: the people and per-stage wall times (seconds)."""

    bodies: List[BodyEstimate]
    intrinsics: Intrinsics
    image_size: tuple
    timings: Dict[str, float] = field(default_factory=dict)


class BodyEstimator:
    """Runs PARE + SMPL for all people of an image at once.

    Args:
        backend: the network (a ``PARE`` module or any callable with its output contract).
        body_model: a :class:`pare_ros.body_model.BodyModel`.
        box_scale: crop side = box_scale · max(box w, h); 1.0 as in PARE's demo.
        device: where crops are sent and SMPL runs.
        crop_on_device: on CUDA, warp all people in one batched op on the GPU (default) instead
            of one OpenCV warp per person on the CPU.
        sync_stages: on CUDA, wait for the GPU at each stage boundary so that ``timings`` give
            each stage its own GPU time (benchmarks); off in the node, where the only wait is
            the one device→host copy per frame, which then carries the GPU time of all stages.
        refine_translation: fit each root translation so that the body's 3D keypoints project
            with the real intrinsics onto PARE's own 2D keypoints (docs/geometry.md); off: the
            translation from PARE's scale alone.
    """

    def __init__(self, backend: Backend, body_model: torch.nn.Module, box_scale: float = 1.0,
                 device: str | torch.device = "cpu", crop_on_device: bool = True,
                 sync_stages: bool = False, refine_translation: bool = True) -> None:
        if box_scale <= 0:
            raise ValueError("box_scale must be positive")
        self.backend = backend
        self.body_model = body_model
        self.box_scale = box_scale
        self.device = torch.device(device)
        self.crop_on_device = crop_on_device
        self.sync_stages = sync_stages and self.device.type == "cuda"
        self.refine_translation = refine_translation

    @torch.inference_mode()
    def estimate(
        self,
        image: np.ndarray,
        boxes: np.ndarray | Sequence[Sequence[float]],
        intrinsics: Optional[Intrinsics] = None,
        color_order: str = "rgb",
        scores: Optional[Sequence[float]] = None,
        vertices: bool = True,
        part_maps: bool = True,
    ) -> Estimates:
        """Estimate bodies in ``image`` for the given boxes [P,4] (x_min, y_min, x_max, y_max).

        ``vertices=False`` skips the mesh (``BodyEstimate.vertices`` None; joints and keypoints
        from :meth:`BodyModel.forward`'s mesh-free path); ``part_maps=False`` leaves
        ``part_attention``/``part_segm_logits`` None (visibility is computed either way): what
        the node asks for when nobody needs them, to keep them off the host."""
        timings: Dict[str, float] = {}
        t0 = time.perf_counter()
        rgb = as_rgb(image, color_order)
        height, width = rgb.shape[:2]
        intrinsics = intrinsics or Intrinsics.default_for(width, height)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, dtype=np.float64)
        if len(scores) != len(boxes):
            raise ValueError(f"{len(scores)} scores for {len(boxes)} boxes")
        if len(boxes) == 0:
            return Estimates([], intrinsics, (width, height), {"total": time.perf_counter() - t0})

        crops = [box_to_crop(b, self.box_scale) for b in boxes]
        if self.device.type == "cuda" and self.crop_on_device:
            # One batched warp of all people on the GPU (matches OpenCV to 1 grey level);
            # the image crosses to the device once.
            from .backends.gpu_preprocess import crop_batch

            batch = crop_batch(torch.from_numpy(rgb).to(self.device, non_blocking=True), crops)
        else:
            batch = crops_to_input(rgb, crops).to(self.device)
        self._sync()
        timings["crop"] = time.perf_counter() - t0

        t = time.perf_counter()
        out = self.backend(batch)
        rotmats = out["pred_pose"].float()
        betas = out["pred_shape"].float()
        cam = out["pred_cam"].float()
        segm = out["pred_segm_mask"].float()
        self._sync()
        timings["network"] = time.perf_counter() - t

        t = time.perf_counter()
        rotmats, cam = rotmats.to(self.device), cam.to(self.device)
        smpl = self.body_model(rotmats, betas.to(self.device), vertices=vertices)   # crop-frame root
        centres = torch.tensor([[c.cx, c.cy] for c in crops], dtype=torch.float32, device=self.device)
        sides = torch.tensor([c.side for c in crops], dtype=torch.float32, device=self.device)
        placement = crop_to_camera(
            rotmats[:, 0], cam, centres, sides, intrinsics, smpl.rest_joints[:, 0],
            keypoints_crop=smpl.joints49[:, 25:] if self.refine_translation else None)
        # The crop-frame body turned rigidly onto the crop's ray (no second SMPL run).
        rotmats = torch.cat((placement.global_orient[:, None], rotmats[:, 1:]), dim=1)
        transl = placement.transl
        joints = placement.apply(smpl.joints)
        keypoints = placement.apply(smpl.joints49)
        mesh = placement.apply(smpl.vertices) if vertices else None
        self._sync()
        timings["smpl"] = time.perf_counter() - t

        t = time.perf_counter()
        result = dict(
            rotmats=rotmats, axis_angle=rotmat_to_axis_angle(rotmats), betas=betas, cam=cam,
            transl=transl, joints=joints, keypoints=keypoints,
            joints2d=project(joints, intrinsics), keypoints2d=project(keypoints, intrinsics),
            rest=smpl.rest_joints, visibility=part_visibility(segm),
        )
        if mesh is not None:
            result["vertices"] = mesh
        if part_maps:
            result["attention"] = segm[:, 1:].flatten(2).softmax(-1).reshape_as(segm[:, 1:])
            result["segm"] = segm
        host = _to_host(result)
        bodies = [
            BodyEstimate(
                box=boxes[i], score=float(scores[i]), crop=crops[i], cam_crop=host["cam"][i],
                betas=host["betas"][i], rotmats=host["rotmats"][i], axis_angle=host["axis_angle"][i],
                transl=host["transl"][i], joints3d=host["joints"][i], keypoints3d=host["keypoints"][i],
                joints2d=host["joints2d"][i], keypoints2d=host["keypoints2d"][i],
                vertices=host["vertices"][i] if mesh is not None else None, rest_joints=host["rest"][i],
                part_attention=host["attention"][i] if part_maps else None,
                part_segm_logits=host["segm"][i] if part_maps else None,
                part_visibility=host["visibility"][i], truncation=crops[i].truncation(width, height),
            )
            for i in range(len(crops))
        ]
        timings["postprocess"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        return Estimates(bodies, intrinsics, (width, height), timings)

    def _sync(self) -> None:
        if self.sync_stages:
            torch.cuda.synchronize(self.device)


def _to_host(arrays: Dict[str, torch.Tensor]) -> Dict[str, np.ndarray]:
    """Per-person tensors [N, ...] → NumPy with a single device→host copy (one synchronisation
    per frame on CUDA instead of one per array)."""
    n = next(iter(arrays.values())).shape[0]
    flat = torch.cat([v.detach().float().reshape(n, -1) for v in arrays.values()], dim=1).cpu().numpy()
    out, offset = {}, 0
    for key, value in arrays.items():
        size = int(np.prod(value.shape[1:], dtype=np.int64))
        out[key] = flat[:, offset:offset + size].reshape(value.shape)
        offset += size
    return out


@torch.inference_mode()
def rebuild_bodies(body_model: torch.nn.Module, bodies: Sequence[BodyEstimate], rotmats: np.ndarray,
                   betas: np.ndarray, transl: np.ndarray, intrinsics: Intrinsics,
                   vertices: bool = True) -> List[BodyEstimate]:
    """Copies of ``bodies`` with new SMPL parameters (e.g. temporally smoothed) and every 3D/2D
    field recomputed by SMPL from them, so joints, mesh and joint rotations stay consistent.

    rotmats [P,24,3,3], betas [P,10], transl [P,3] (camera optical frame, m). ``vertices``
    False: no mesh (``vertices`` None; the joints-only SMPL path, equal to 1e-6).
    """
    if not bodies:
        return []
    device = next(body_model.buffers()).device
    r = torch.as_tensor(np.asarray(rotmats), dtype=torch.float32, device=device)
    b = torch.as_tensor(np.asarray(betas), dtype=torch.float32, device=device)
    t = torch.as_tensor(np.asarray(transl), dtype=torch.float32, device=device)
    smpl = body_model(r, b, vertices=vertices)
    joints = smpl.joints + t[:, None]
    keypoints = smpl.joints49 + t[:, None]
    fields = dict(
        rotmats=r, axis_angle=rotmat_to_axis_angle(r), betas=b, transl=t, joints3d=joints,
        keypoints3d=keypoints, rest_joints=smpl.rest_joints,
        joints2d=project(joints, intrinsics), keypoints2d=project(keypoints, intrinsics))
    if vertices:
        fields["vertices"] = smpl.vertices + t[:, None]
    host = _to_host(fields)
    none = {} if vertices else {"vertices": None}
    return [dataclasses.replace(body, **{k: v[i] for k, v in host.items()}, **none)
            for i, body in enumerate(bodies)]


@torch.inference_mode()
def with_vertices(body_model: torch.nn.Module, bodies: Sequence[BodyEstimate]) -> List[BodyEstimate]:
    """``bodies`` with their mesh: SMPL on each body's own (rotmats, betas, transl) for those
    whose ``vertices`` is None (e.g. a coasting track's estimate from a frame without mesh
    subscribers); every other field is kept as it is."""
    missing = [i for i, body in enumerate(bodies) if body.vertices is None]
    out = list(bodies)
    if missing:
        device = next(body_model.buffers()).device
        r, b, t = (torch.as_tensor(np.stack([np.asarray(getattr(bodies[i], name)) for i in missing]),
                                   dtype=torch.float32, device=device) for name in ("rotmats", "betas", "transl"))
        mesh = (body_model(r, b).vertices + t[:, None]).cpu().numpy()
        for k, i in enumerate(missing):
            out[i] = dataclasses.replace(bodies[i], vertices=mesh[k])
    return out


def weak_perspective_keypoints(body: BodyEstimate, points_crop: np.ndarray) -> np.ndarray:
    """PARE's own crop-camera projection (the reference demo's ``smpl_joints2d``) into source
    pixels [K,2] of crop-frame points [K,3]: SMPL output with PARE's crop-frame root rotation
    and no translation (not ``body.joints3d``, which is in the camera frame)."""
    norm = pare_crop_projection(torch.as_tensor(points_crop, dtype=torch.float64)[None],
                                torch.as_tensor(body.cam_crop, dtype=torch.float64)[None])[0]
    return body.crop.to_image(CROP_SIZE / 2 * (1 + norm.numpy()))
