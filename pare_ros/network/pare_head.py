"""PARE's part-attention regression head (reference spec §3.2, released configuration).

Two parallel conv branches read the 480-ch backbone features: the *part branch* predicts
25-channel part-segmentation logits (background + 24 SMPL parts); the *SMPL branch* produces
128-ch pose features and, through a 1×1 conv, 64-ch shape/camera features. Each part's logit
map, spatially soft-maxed, pools the SMPL-branch features into one vector per joint. Joint j's
6D rotation is regressed from its own pooled 128-ch vector only (a locally connected layer);
shape and camera come from all 24 pooled 64-ch vectors.
"""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from ..geometry import rot6d_to_rotmat

NUM_JOINTS = 24
BN_MOMENTUM = 0.1


def _branch(in_ch: int, width: int, num_layers: int) -> nn.Sequential:
    """[3×3 conv (no bias), BN, ReLU] × num_layers. For HRNet PARE uses stride-1 3×3 convs."""
    layers = []
    for _ in range(num_layers):
        layers += [
            nn.Conv2d(in_ch, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        in_ch = width
    return nn.Sequential(*layers)


class LocallyConnectedJoints(nn.Module):
    """Per-joint linear map without bias: [N, C_in, J] → [N, C_out, J].

    Stores its weight in the layout of PARE's ``LocallyConnected2d`` ([1, C_out, C_in, J, 1, 1])
    so checkpoints load unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, num_joints: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, out_channels, in_channels, num_joints, 1, 1))
        nn.init.normal_(self.weight, std=(1.0 / in_channels) ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ncj,ocj->noj", x, self.weight[0, :, :, :, 0, 0])


class PareHead(nn.Module):
    """Backbone features [N,480,56,56] → SMPL pose/shape, crop camera and part logits."""

    def __init__(
        self,
        in_channels: int = 480,
        num_layers: int = 2,
        width: int = 128,
        num_features_smpl: int = 64,
        num_joints: int = NUM_JOINTS,
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.keypoint_deconv_layers = _branch(in_channels, width, num_layers)
        self.keypoint_final_layer = nn.Conv2d(width, num_joints + 1, kernel_size=1)
        self.smpl_deconv_layers = _branch(in_channels, width, num_layers)
        self.smpl_final_layer = nn.Conv2d(width, num_features_smpl, kernel_size=1)

        self.pose_mlp = LocallyConnectedJoints(width, 6, num_joints)
        self.shape_mlp = nn.Linear(num_features_smpl * num_joints, 10)
        self.cam_mlp = nn.Linear(num_features_smpl * num_joints, 3)

        # Buffers kept for checkpoint compatibility; the released model never uses them.
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("init_pose", torch.zeros(1, 6 * num_joints))
        self.register_buffer("init_shape", torch.zeros(1, 10))
        self.register_buffer("init_cam", torch.zeros(1, 3))

    def forward(self, features: torch.Tensor) -> Dict[str, torch.Tensor]:
        n = features.shape[0]
        part_feats = self.keypoint_deconv_layers(features)           # [N,128,56,56]
        segm_logits = self.keypoint_final_layer(part_feats)          # [N,25,56,56]
        smpl_feats = self.smpl_deconv_layers(features)               # [N,128,56,56]
        cam_shape_map = self.smpl_final_layer(smpl_feats)            # [N,64,56,56]

        # Spatial softmax per part over all 56·56 positions; background (channel 0) dropped.
        attention = segm_logits[:, 1:].flatten(2).softmax(dim=-1)    # [N,24,3136]
        point_local_feat = torch.bmm(smpl_feats.flatten(2), attention.transpose(1, 2))   # [N,128,24]
        cam_shape_feats = torch.bmm(cam_shape_map.flatten(2), attention.transpose(1, 2))  # [N,64,24]

        pose_6d = self.pose_mlp(point_local_feat).transpose(1, 2)    # [N,24,6]
        flat = cam_shape_feats.reshape(n, -1)                         # channel-major: c·24 + j
        return {
            "pred_pose": rot6d_to_rotmat(pose_6d),                    # [N,24,3,3]
            "pred_shape": self.shape_mlp(flat),                       # [N,10]
            "pred_cam": self.cam_mlp(flat),                           # [N,3] (s, tx, ty)
            "pred_segm_mask": segm_logits,
            "pred_pose_6d": pose_6d,
            "part_attention": attention.reshape_as(segm_logits[:, 1:]),  # [N,24,56,56]
        }
