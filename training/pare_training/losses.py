"""PARE's training loss (pare-model-spec.md §10.1, ``pare/losses/losses.py PARELoss``).

    total = loss_weight · [ kp·L_2D + kp·L_3D + pose·L_pose + beta·L_beta + shape·L_vert
                            + L_cam + segm·L_segm ]

with the defaults loss_weight 60, kp 5, pose 1, beta 0.001, shape 0, segm 1 (effective weights
2D 300, 3D 300, pose 60, betas 0.06, cam 60, segm 60). Every term is a plain mean, as in PARE, so
samples without a label still count in the denominator of the 2D term (conf 0 zeroes them).

Batch keys (as ``HumanDataset`` yields, stacked):
    ``keypoints``   [N,49,3] 2D joints in [-1,1] crop coordinates + conf,
    ``pose_3d``     [N,49,4] 3D joints (m) + conf, ``has_pose_3d`` [N] (optional, else conf > 0),
    ``pose_rotmat`` [N,24,3,3] or ``pose`` [N,72] axis-angle, ``betas`` [N,10], ``has_smpl`` [N],
    ``pose_conf``   optional [N,24] per-joint pose confidence (default 1),
    ``part_labels`` optional long [N,H,W] (0 background, k = SMPL part k−1),
    ``vertices``    optional [N,6890,3] GT vertices (only for the vertex term, weight 0 by default).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Tuple

import torch
import torch.nn.functional as F

from pare_ros.geometry import axis_angle_to_rotmat

NUM_OPENPOSE = 25


@dataclass(frozen=True)
class LossWeights:
    """PARE's config defaults (``pare/core/config.py``)."""

    loss_weight: float = 60.0
    keypoint: float = 5.0          # shared by the 2D and 3D keypoint terms
    openpose_train_weight: float = 0.0
    gt_train_weight: float = 1.0
    pose: float = 1.0
    beta: float = 0.001
    shape: float = 0.0             # vertex L1
    cam: float = 1.0
    part_segm: float = 1.0


def perspective_projection(points: torch.Tensor, cam_t: torch.Tensor, focal_length: float = 5000.0,
                           img_res: int = 224) -> torch.Tensor:
    """[N,K,3] body-frame points + [N,3] crop translation → [N,K,2] in [-1,1] crop coordinates
    (camera centre at the crop centre, as PARE: f·(X+t)/(Z+t_z) / (img_res/2))."""
    p = points + cam_t[:, None]
    return focal_length * p[..., :2] / p[..., 2:3] / (img_res / 2.0)


def keypoint_2d_loss(pred: torch.Tensor, gt: torch.Tensor, openpose_weight: float,
                     gt_weight: float) -> torch.Tensor:
    """Confidence-weighted MSE over [N,49,2] coordinates; OpenPose joints (0–24) × openpose_weight,
    GT joints (25–48) × gt_weight."""
    conf = gt[:, :, -1:].clone()
    conf[:, :NUM_OPENPOSE] *= openpose_weight
    conf[:, NUM_OPENPOSE:] *= gt_weight
    return (conf * F.mse_loss(pred, gt[:, :, :-1], reduction="none")).mean()


def keypoint_3d_loss(pred: torch.Tensor, gt: torch.Tensor, has_3d: torch.Tensor) -> torch.Tensor:
    """MSE on the 24 GT joints (49-joint indices 25–48), each set centred at its mid-hip
    (GT indices 2, 3 = Right/Left Hip), × conf, over samples with 3D labels only."""
    pred, gt = pred[:, NUM_OPENPOSE:], gt[:, NUM_OPENPOSE:]
    keep = has_3d > 0
    if not keep.any():
        return pred.sum() * 0.0     # keeps the graph (and the device) without a NaN mean
    pred, gt = pred[keep], gt[keep]
    conf = gt[:, :, -1:]
    gt_xyz = gt[:, :, :3] - (gt[:, 2:3, :3] + gt[:, 3:4, :3]) / 2
    pred = pred - (pred[:, 2:3] + pred[:, 3:4]) / 2
    return (conf * F.mse_loss(pred, gt_xyz, reduction="none")).mean()


def smpl_losses(pred_rotmat: torch.Tensor, pred_betas: torch.Tensor, gt_rotmat: torch.Tensor,
                gt_betas: torch.Tensor, has_smpl: torch.Tensor,
                pose_conf: torch.Tensor | None = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """MSE between rotation matrices [N,24,3,3] (× per-joint conf [N,24]) and between betas
    [N,10], over has_smpl samples."""
    keep = has_smpl > 0
    if not keep.any():
        zero = pred_rotmat.sum() * 0.0 + pred_betas.sum() * 0.0
        return zero, zero
    err = F.mse_loss(pred_rotmat[keep], gt_rotmat[keep].to(pred_rotmat.dtype), reduction="none")
    if pose_conf is not None:
        err = err * pose_conf[keep][:, :, None, None]
    return err.mean(), F.mse_loss(pred_betas[keep], gt_betas[keep].to(pred_betas.dtype))


def camera_loss(pred_cam: torch.Tensor) -> torch.Tensor:
    """mean(exp(−10·s)²): pushes the weak-perspective scale s = pred_cam[:, 0] positive."""
    return (torch.exp(-10.0 * pred_cam[:, 0]) ** 2).mean()


def part_segm_loss(logits: torch.Tensor, labels: torch.Tensor, has_smpl: torch.Tensor) -> torch.Tensor:
    """Pixel cross-entropy of part logits [N,25,h,w], bilinearly upsampled (align_corners=True)
    to the label size [N,H,W], over has_smpl samples."""
    keep = has_smpl > 0
    if not keep.any():
        return logits.sum() * 0.0
    up = F.interpolate(logits[keep], size=labels.shape[-2:], mode="bilinear", align_corners=True)
    return F.cross_entropy(up, labels[keep].long())


class PARELoss(torch.nn.Module):
    """The full loss: ``forward(pred, batch) -> (total, terms)``.

    Args:
        body_model: ``pare_ros.body_model.BodyModel`` (joints49 from predicted pose/shape).
        weights: :class:`LossWeights`.
        focal_length, img_res: the crop camera used for projection (PARE: 5000, 224).

    ``pred`` is ``PARE.forward``'s dict (``pred_pose``, ``pred_shape``, ``pred_cam``,
    ``pred_cam_t``, ``pred_segm_mask``). ``terms`` holds each unweighted term (detached) and
    ``total``; the part term is only computed when the weight is non-zero and labels are given.
    """

    def __init__(self, body_model: torch.nn.Module, weights: LossWeights = LossWeights(),
                 focal_length: float = 5000.0, img_res: int = 224) -> None:
        super().__init__()
        self.body_model = body_model
        self.weights = weights
        self.focal_length, self.img_res = focal_length, img_res

    def forward(self, pred: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        w = self.weights
        out = self.body_model(pred["pred_pose"], pred["pred_shape"])
        joints2d = perspective_projection(out.joints49, pred["pred_cam_t"], self.focal_length,
                                          self.img_res)
        gt_kp = batch["keypoints"]
        gt_3d = batch["pose_3d"]
        has_3d = batch.get("has_pose_3d")
        if has_3d is None:
            has_3d = (gt_3d[:, :, -1] > 0).any(dim=1).float()
        has_smpl = batch["has_smpl"]
        gt_rotmat = batch.get("pose_rotmat")
        if gt_rotmat is None:
            gt_rotmat = axis_angle_to_rotmat(batch["pose"].reshape(-1, 24, 3))
        terms: Dict[str, torch.Tensor] = {
            "keypoints_2d": keypoint_2d_loss(joints2d, gt_kp, w.openpose_train_weight,
                                             w.gt_train_weight),
            "keypoints_3d": keypoint_3d_loss(out.joints49, gt_3d, has_3d),
        }
        terms["pose"], terms["betas"] = smpl_losses(pred["pred_pose"], pred["pred_shape"], gt_rotmat,
                                                    batch["betas"], has_smpl, batch.get("pose_conf"))
        terms["cam"] = camera_loss(pred["pred_cam"])
        total = (w.keypoint * (terms["keypoints_2d"] + terms["keypoints_3d"])
                 + w.pose * terms["pose"] + w.beta * terms["betas"] + w.cam * terms["cam"])
        if w.shape and "vertices" in batch:
            keep = has_smpl > 0
            terms["vertices"] = (F.l1_loss(out.vertices[keep], batch["vertices"][keep])
                                 if keep.any() else out.vertices.sum() * 0.0)
            total = total + w.shape * terms["vertices"]
        if w.part_segm and "part_labels" in batch:
            terms["part_segm"] = part_segm_loss(pred["pred_segm_mask"], batch["part_labels"],
                                                has_smpl)
            total = total + w.part_segm * terms["part_segm"]
        total = w.loss_weight * total
        detached = {k: v.detach() for k, v in terms.items()}
        detached["total"] = total.detach()
        return total, detached


class StagedLoss(torch.nn.Module):
    """PARELoss without its own part term, plus the part term over ``has_part_labels`` samples
    when ``part_supervision`` (same weighting: loss_weight · part_segm · CE). Stage 1 of the
    recipe (§10.2) has it on, stage 2 off."""

    def __init__(self, body_model: torch.nn.Module, weights: LossWeights, part_supervision: bool,
                 focal_length: float = 5000.0, img_res: int = 224) -> None:
        super().__init__()
        import dataclasses
        self.weights, self.part_supervision = weights, part_supervision
        self.base = PARELoss(body_model, dataclasses.replace(weights, part_segm=0.0),
                             focal_length, img_res)

    def forward(self, pred, batch):
        total, terms = self.base(pred, batch)
        w = self.weights
        if self.part_supervision and w.part_segm and "part_labels" in batch:
            segm = part_segm_loss(pred["pred_segm_mask"].float(), batch["part_labels"],
                                  batch["has_part_labels"])
            total = total + w.loss_weight * w.part_segm * segm
            terms["part_segm"] = segm.detach()
            terms["total"] = total.detach()
        return total, terms
