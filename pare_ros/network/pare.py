"""The PARE network: HRNet-W32 backbone + part-attention head (reference spec §3, §4)."""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from .config import PareConfig
from .hrnet import HRNetW32
from .pare_head import PareHead


class PARE(nn.Module):
    """Normalised RGB crops [N,3,224,224] → SMPL parameters and part segmentation.

    ``forward`` returns a dict with
        ``pred_pose``      [N,24,3,3] joint rotations (SMPL order, root first),
        ``pred_shape``     [N,10] betas,
        ``pred_cam``       [N,3] weak-perspective crop camera (s, tx, ty),
        ``pred_cam_t``     [N,3] the same as a translation for a focal_length-px 224 crop,
        ``pred_segm_mask`` [N,25,56,56] part logits (0 = background, k = SMPL part k−1),
        ``part_attention`` [N,24,56,56] the spatial softmax of logits 1..24 used for pooling,
        ``pred_pose_6d``   [N,24,6] raw 6D rotations.
    """

    def __init__(self, config: PareConfig | None = None) -> None:
        super().__init__()
        self.config = config or PareConfig()
        self.backbone = HRNetW32()
        self.head = PareHead(
            in_channels=HRNetW32.out_channels,
            num_layers=self.config.num_deconv_layers,
            width=self.config.num_deconv_filters,
            num_features_smpl=self.config.num_features_smpl,
            num_joints=self.config.num_joints,
        )

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        out = self.head(self.backbone(images))
        out["pred_cam_t"] = weak_to_crop_translation(
            out["pred_cam"], self.config.focal_length, self.config.img_res
        )
        return out


def weak_to_crop_translation(cam: torch.Tensor, focal_length: float, img_res: int) -> torch.Tensor:
    """(s, tx, ty) → (tx, ty, 2f / (res·s + 1e-9)): PARE's crop-space perspective translation."""
    s, tx, ty = cam.unbind(-1)
    return torch.stack((tx, ty, 2 * focal_length / (img_res * s + 1e-9)), dim=-1)
