"""A few-thousand-parameter network with PARE's output contract, for tests and smoke runs of
the training machinery (``model: tiny``). It has BatchNorm layers like PARE, so the
BatchNorm modes (local / sync / frozen) matter for it as they do for the real network."""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from pare_ros.geometry import rot6d_to_rotmat
from pare_ros.network.pare import weak_to_crop_translation


class _Head(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        # no bias: a per-part constant cancels in the spatial softmax, so its exact gradient
        # is 0 without part supervision and Adam would turn float noise into ±lr steps (a
        # 1-vs-N-process comparison then differs by the sign of that noise)
        self.segm = nn.Conv2d(ch, 25, 1, bias=False)
        self.pose_mlp = nn.Linear(ch, 6)              # per part, shared weights
        self.shape_mlp = nn.Linear(ch, 10)
        self.cam_mlp = nn.Linear(ch, 3)         # bias[0] = initial camera scale (as PARE's)


class TinyPARE(nn.Module):
    """Normalised crops [N,3,H,W] → the PARE output dict (``pred_pose`` [N,24,3,3],
    ``pred_shape`` [N,10], ``pred_cam`` [N,3], ``pred_cam_t`` [N,3], ``pred_segm_mask``
    [N,25,56,56], ``part_attention`` [N,24,56,56], ``pred_pose_6d`` [N,24,6])."""

    def __init__(self, ch: int = 8, focal_length: float = 5000.0, img_res: int = 224) -> None:
        super().__init__()
        self.focal_length, self.img_res = focal_length, img_res
        self.backbone = nn.Sequential(
            nn.AdaptiveAvgPool2d(28),                      # cheap on any input size
            nn.Conv2d(3, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU())
        self.head = _Head(ch)

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        f = self.backbone(images)                                          # [N,C,28,28]
        logits = self.head.segm(f)                                         # [N,25,28,28]
        # part attention pools the features as in PARE, so the segmentation branch is used
        # (and trained) also without part supervision (DDP needs every parameter in the loss)
        att = torch.softmax(logits[:, 1:].flatten(2), -1)                  # [N,24,784]
        parts = att @ f.flatten(2).transpose(1, 2)                         # [N,24,C]
        pose6d = self.head.pose_mlp(parts)                                 # [N,24,6]
        g = parts.mean(1)                                                  # [N,C]
        cam = self.head.cam_mlp(g)
        segm = nn.functional.interpolate(logits, size=56, mode="bilinear", align_corners=False)
        att56 = nn.functional.interpolate(att.reshape(-1, 24, 28, 28), size=56, mode="bilinear",
                                          align_corners=False)
        return {"pred_pose": rot6d_to_rotmat(pose6d.reshape(-1, 6)).reshape(-1, 24, 3, 3),
                "pred_shape": self.head.shape_mlp(g), "pred_cam": cam,
                "pred_cam_t": weak_to_crop_translation(cam, self.focal_length, self.img_res),
                "pred_segm_mask": segm, "part_attention": att56, "pred_pose_6d": pose6d}
