"""Image → bodies: the ROS-free PARE pipeline.

Given an image, person boxes and camera intrinsics, :class:`BodyEstimator` crops every person
like the reference demo, runs all crops through the network in one batch, runs SMPL once for
the batch and places each body in the camera optical frame with the real intrinsics
(:func:`pare_ros.camera.crop_to_camera`: PARE's crop-frame orientation turned onto the crop's
ray, translation refined under the real camera; docs/geometry.md).
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from .camera import CameraPlacement, Intrinsics, crop_to_camera, pare_crop_projection, project
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
            the one device→host copy per frame (a second one for the mesh, when asked for),
            which then carries the GPU time of all stages.
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
        points: bool = True,
    ) -> Estimates:
        """Estimate bodies in ``image`` for the given boxes [P,4] (x_min, y_min, x_max, y_max).

        ``vertices=False`` skips the mesh (``BodyEstimate.vertices`` None; joints and keypoints
        from :meth:`BodyModel.forward`'s mesh-free path); ``part_maps=False`` leaves
        ``part_attention``/``part_segm_logits`` None (visibility is computed either way): what
        the node asks for when nobody needs them, to keep them off the host. ``points=False``
        leaves the fields that follow from the parameters None (``axis_angle``, ``joints3d``,
        ``keypoints3d``, ``joints2d``, ``keypoints2d``; and the mesh): for a caller that poses
        the bodies again anyway (:func:`rebuild_bodies` on smoothed parameters)."""
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

            batch = crop_batch(_host_tensor(rgb).to(self.device, non_blocking=True), crops)
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
        # The device→host boundary, one copy: the network's parameters and the visibility.
        # The skeleton is posed and placed on the host (small float64 NumPy work); only the
        # mesh, where asked for, is skinned where SMPL's constants are (and its skeleton with it).
        vertices = vertices and points
        on_device = dict(rotmats=rotmats, betas=betas, cam=cam, visibility=part_visibility(segm))
        if part_maps:
            on_device["attention"] = segm[:, 1:].flatten(2).softmax(-1).reshape_as(segm[:, 1:])
            on_device["segm"] = segm
        smpl, smpl_seconds = None, 0.0
        if vertices:
            smpl_start = time.perf_counter()
            smpl = self.body_model(rotmats.to(self.device), betas.to(self.device))     # crop-frame root
            on_device.update(joints=smpl.joints, joints49=smpl.joints49, rest=smpl.rest_joints)
            smpl_seconds = time.perf_counter() - smpl_start
        host = _to_host(on_device)
        post_seconds = time.perf_counter() - t - smpl_seconds

        t = time.perf_counter()
        if smpl is None:                                                               # crop-frame root
            host["joints"], host["joints49"], host["rest"] = self.body_model.skeleton(host["rotmats"], host["betas"])
        crop_boxes = torch.from_numpy(np.array([[c.cx, c.cy, c.side] for c in crops]))
        root_crop, cam64, rest_root = (torch.from_numpy(x.astype(np.float64))
                                       for x in (host["rotmats"][:, 0], host["cam"], host["rest"][:, 0]))
        points_crop = np.concatenate((host["joints"], host["joints49"]), axis=1, dtype=np.float64)  # [N,24+49,3]
        placement = crop_to_camera(
            root_crop, cam64, crop_boxes[:, :2], crop_boxes[:, 2], intrinsics, rest_root,
            keypoints_crop=torch.from_numpy(points_crop[:, 24 + 25:]) if self.refine_translation else None)
        r_ray, global_orient, transl = (np.asarray(x, dtype=np.float64) for x in
                                        (placement.ray_rotation, placement.global_orient, placement.transl))
        # The crop-frame body turned rigidly onto the crop's ray (no second SMPL run).
        points_camera = _turn(points_crop, r_ray, rest_root.numpy(), transl) if points else None
        mesh = None
        if vertices:
            on_mesh_device = (torch.from_numpy(x).to(smpl.vertices) for x in (r_ray, global_orient, transl))
            mesh = CameraPlacement(*on_mesh_device, smpl.rest_joints[:, 0]).apply(smpl.vertices).cpu().numpy()
        rotmats = host["rotmats"]
        rotmats[:, 0] = global_orient
        self._sync()
        timings["smpl"] = smpl_seconds + time.perf_counter() - t

        t = time.perf_counter()
        transl = transl.astype(np.float32)
        if points:
            pixels = project(points_camera, intrinsics).astype(np.float32)
            points_camera = points_camera.astype(np.float32)
            axis_angle = rotmat_to_axis_angle(rotmats).astype(np.float32)
            point_fields = [dict(axis_angle=a, joints3d=p[:24], keypoints3d=p[24:], joints2d=q[:24],
                                 keypoints2d=q[24:]) for a, p, q in zip(axis_angle, points_camera, pixels)]
        else:                   # the caller poses them again: no points, no axis-angle yet
            point_fields = [dict.fromkeys(("axis_angle", "joints3d", "keypoints3d", "joints2d", "keypoints2d"))
                            ] * len(crops)
        bodies = [
            BodyEstimate(
                box=boxes[i], score=float(scores[i]), crop=crops[i], cam_crop=host["cam"][i],
                betas=host["betas"][i], rotmats=rotmats[i], transl=transl[i], **point_fields[i],
                vertices=mesh[i] if mesh is not None else None, rest_joints=host["rest"][i],
                part_attention=host["attention"][i] if part_maps else None,
                part_segm_logits=host["segm"][i] if part_maps else None,
                part_visibility=host["visibility"][i], truncation=crops[i].truncation(width, height),
            )
            for i in range(len(crops))
        ]
        timings["postprocess"] = post_seconds + time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        return Estimates(bodies, intrinsics, (width, height), timings)

    def _sync(self) -> None:
        if self.sync_stages:
            torch.cuda.synchronize(self.device)


def _host_tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory, also for a read-only array (the frame pipeline
    decodes into a read-only view of the message): torch only reads it here, so its warning
    about non-writable arrays is moot."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _turn(points: np.ndarray, r_ray: np.ndarray, rest_root: np.ndarray, transl: np.ndarray) -> np.ndarray:
    """:meth:`CameraPlacement.apply` on host arrays: crop-frame points [N,K,3] turned by R_ray
    [N,3,3] about the rest pelvis [N,3], plus ``transl`` [N,3] → camera frame [N,K,3]."""
    j0 = rest_root[:, None]
    return (points - j0) @ r_ray.transpose(0, 2, 1) + j0 + transl[:, None]


def _to_host(arrays: Dict[str, torch.Tensor]) -> Dict[str, np.ndarray]:
    """Per-person tensors [N, ...] → float32 NumPy copies (never views of the tensors: callers
    write into them), with a single device→host copy on a device (one synchronisation per frame
    on CUDA instead of one per array)."""
    first = next(iter(arrays.values()))
    if first.device.type == "cpu":               # already on the host: a copy each, no concatenation
        return {key: value.float().numpy().astype(np.float32) for key, value in arrays.items()}
    n = len(first)
    flat = torch.cat([v.reshape(n, -1).float() for v in arrays.values()], dim=1).cpu().numpy()
    out, offset = {}, 0
    for key, value in arrays.items():
        size = math.prod(value.shape[1:])
        out[key] = flat[:, offset:offset + size].reshape(value.shape)
        offset += size
    return out


def rebuild_bodies(body_model: torch.nn.Module, bodies: Sequence[BodyEstimate], rotmats: np.ndarray,
                   betas: np.ndarray, transl: np.ndarray, intrinsics: Intrinsics,
                   vertices=True) -> List[BodyEstimate]:
    """Copies of ``bodies`` with new SMPL parameters (e.g. temporally smoothed) and every 3D/2D
    field recomputed by SMPL from them, so joints, mesh and joint rotations stay consistent.

    rotmats [P,24,3,3], betas [P,10], transl [P,3] (camera optical frame, m). ``vertices``
    False: no mesh (``vertices`` None; the joints-only SMPL path, equal to 1e-6); a
    :meth:`BodyModel.vertex_subset`: ``vertices`` holds only its rows [V',3].
    """
    if not bodies:
        return []
    # Copies (never views of the caller's arrays), in the dtypes the estimator gives.
    rotmats, betas = np.array(rotmats, dtype=np.float32), np.array(betas, dtype=np.float32)
    transl = np.asarray(transl, dtype=np.float64)
    if vertices:
        device = next(body_model.buffers()).device
        with torch.inference_mode():
            smpl = body_model(torch.from_numpy(rotmats).to(device), torch.from_numpy(betas).to(device),
                              **({} if vertices is True else {"vertices": vertices}))
            host = _to_host(dict(rest_joints=smpl.rest_joints, joints=smpl.joints, joints49=smpl.joints49,
                                 vertices=smpl.vertices + torch.from_numpy(transl).to(smpl.vertices)[:, None]))
    else:                                  # mesh-free: the skeleton posed on the host
        host = dict(zip(("joints", "joints49", "rest_joints"), body_model.skeleton(rotmats, betas)))
    points = np.concatenate((host.pop("joints"), host.pop("joints49")), axis=1, dtype=np.float64)
    points += transl[:, None]                                               # [P,24+49,3]
    pixels = project(points, intrinsics).astype(np.float32)
    points = points.astype(np.float32)
    fields = dict(host, rotmats=rotmats, betas=betas, axis_angle=rotmat_to_axis_angle(rotmats).astype(np.float32),
                  transl=transl.astype(np.float32), joints3d=points[:, :24], keypoints3d=points[:, 24:],
                  joints2d=pixels[:, :24], keypoints2d=pixels[:, 24:])
    if not vertices:
        fields["vertices"] = [None] * len(bodies)
    names = tuple(fields)
    return [dataclasses.replace(body, **dict(zip(names, values))) for body, *values in zip(bodies, *fields.values())]


@torch.inference_mode()
def with_vertices(body_model: torch.nn.Module, bodies: Sequence[BodyEstimate]) -> List[BodyEstimate]:
    """``bodies`` with their mesh: SMPL on each body's own (rotmats, betas, transl) for those
    whose ``vertices`` is None (e.g. a coasting track's estimate from a frame without mesh
    subscribers); every other field is kept as it is."""
    missing = [i for i, body in enumerate(bodies) if body.vertices is None]
    out = list(bodies)
    if missing:
        mesh = _posed_vertices(body_model, [bodies[i] for i in missing], True)
        for k, i in enumerate(missing):
            out[i] = dataclasses.replace(bodies[i], vertices=mesh[k])
    return out


@torch.inference_mode()
def vertex_rows(body_model: torch.nn.Module, bodies: Sequence[BodyEstimate], step: int,
                subset) -> List[np.ndarray]:
    """Every ``step``-th mesh vertex of each body [ceil(6890/step), 3], camera frame: its
    ``vertices[::step]`` where it has the whole mesh, else SMPL on its own parameters through
    ``subset`` (``body_model.vertex_subset(range(0, 6890, step))``: only those rows skinned, at
    1/step of the mesh's cost; the same values to float rounding, < 1e-6 m)."""
    rows: List[Optional[np.ndarray]] = [None if b.vertices is None else np.asarray(b.vertices)[::step]
                                        for b in bodies]
    missing = [i for i, r in enumerate(rows) if r is None]
    if missing:
        for i, points in zip(missing, _posed_vertices(body_model, [bodies[i] for i in missing], subset)):
            rows[i] = points
    return rows


def _posed_vertices(body_model: torch.nn.Module, bodies: Sequence[BodyEstimate], vertices) -> np.ndarray:
    """SMPL's mesh (``vertices`` True) or a vertex subset of ``bodies``' own parameters, placed
    by their ``transl``: [P, V', 3] float32."""
    device = next(body_model.buffers()).device
    r, b, t = (torch.as_tensor(np.stack([np.asarray(getattr(body, name)) for body in bodies]),
                               dtype=torch.float32, device=device) for name in ("rotmats", "betas", "transl"))
    mesh = body_model(r, b, **({} if vertices is True else {"vertices": vertices})).vertices
    return (mesh + t[:, None]).cpu().numpy()


def weak_perspective_keypoints(body: BodyEstimate, points_crop: np.ndarray) -> np.ndarray:
    """PARE's own crop-camera projection (the reference demo's ``smpl_joints2d``) into source
    pixels [K,2] of crop-frame points [K,3]: SMPL output with PARE's crop-frame root rotation
    and no translation (not ``body.joints3d``, which is in the camera frame)."""
    norm = pare_crop_projection(torch.as_tensor(points_crop, dtype=torch.float64)[None],
                                torch.as_tensor(body.cam_crop, dtype=torch.float64)[None])[0]
    return body.crop.to_image(CROP_SIZE / 2 * (1 + norm.numpy()))
