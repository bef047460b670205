"""HRNet-W32 backbone in the "upsample-by-conv" variant that PARE's released models use.

Module and parameter names follow the original PARE / mmhuman3d implementation exactly, so that
the official checkpoints load strictly (reference spec §3.1, §7.3). The network keeps four
parallel branches of 32/64/128/256 channels at 1/4, 1/8, 1/16 and 1/32 of the input resolution
and finally brings the three coarser branches up to 1/4 with [bilinear ×2, 3×3 conv, BN, ReLU]
blocks, giving a 480-channel feature map (56×56 for a 224×224 crop).
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

BN_MOMENTUM = 0.1
BRANCH_CHANNELS = (32, 64, 128, 256)
NUM_MODULES = {2: 1, 3: 4, 4: 3}
BLOCKS_PER_BRANCH = 4


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs with an identity shortcut (channel count unchanged inside HRNet stages)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand (×4) with an optional projection shortcut."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: List[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch, momentum=BN_MOMENTUM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel BasicBlock branches followed by all-to-all multi-resolution fusion.

    Fusion into branch i sums, over input branches j: the identity (j = i), a 1×1 conv + BN +
    nearest upsampling (j > i), or a chain of i−j stride-2 3×3 convs (j < i); then ReLU.
    """

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        self.num_branches = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c) for _ in range(BLOCKS_PER_BRANCH)]) for c in channels
        )
        self.fuse_layers = nn.ModuleList()
        for i, c_i in enumerate(channels):
            fuse_i = nn.ModuleList()
            for j, c_j in enumerate(channels):
                if j > i:
                    fuse_i.append(nn.Sequential(
                        nn.Conv2d(c_j, c_i, 1, bias=False),
                        nn.BatchNorm2d(c_i, momentum=BN_MOMENTUM),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))
                elif j == i:
                    fuse_i.append(nn.Identity())
                else:
                    steps = i - j
                    fuse_i.append(nn.Sequential(*[
                        _conv_bn(c_j, c_i if k == steps - 1 else c_j, 3, 2, relu=k < steps - 1)
                        for k in range(steps)
                    ]))
            self.fuse_layers.append(fuse_i)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for i, fuse_i in enumerate(self.fuse_layers):
            # Summation order (branch 0 first, then j = 1, 2, ...) matches the reference.
            y = fuse_i[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + fuse_i[j](xs[j])
            fused.append(self.relu(y))
        return fused


def _upsample_block(channels: int, repeats: int) -> nn.Sequential:
    layers: List[nn.Module] = []
    for _ in range(repeats):
        layers += [
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class HRNetW32(nn.Module):
    """HRNet-W32 feature extractor: images [N,3,H,W] → features [N,480,H/4,W/4]."""

    out_channels = sum(BRANCH_CHANNELS)

    def __init__(self) -> None:
        super().__init__()
        c = BRANCH_CHANNELS
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

        projection = nn.Sequential(
            nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256, momentum=BN_MOMENTUM)
        )
        self.layer1 = nn.Sequential(
            Bottleneck(64, 64, projection), *[Bottleneck(256, 64) for _ in range(3)]
        )

        # transition1 creates branches 0 and 1 from the 256-ch layer1 output; later
        # transitions only add one new, coarser branch computed from the previous last branch.
        self.transition1 = nn.ModuleList([
            _conv_bn(256, c[0], 3, 1, relu=True),
            nn.Sequential(_conv_bn(256, c[1], 3, 2, relu=True)),
        ])
        self.stage2 = nn.Sequential(*[HighResolutionModule(c[:2]) for _ in range(NUM_MODULES[2])])
        self.transition2 = self._new_branch_transition(2)
        self.stage3 = nn.Sequential(*[HighResolutionModule(c[:3]) for _ in range(NUM_MODULES[3])])
        self.transition3 = self._new_branch_transition(3)
        self.stage4 = nn.Sequential(*[HighResolutionModule(c[:4]) for _ in range(NUM_MODULES[4])])

        # Present in every released checkpoint but never used by PARE's forward pass.
        self.final_layer = nn.Conv2d(c[0], 24, kernel_size=1)
        self.upsample_stage_2 = _upsample_block(c[1], 1)
        self.upsample_stage_3 = _upsample_block(c[2], 2)
        self.upsample_stage_4 = _upsample_block(c[3], 3)

    @staticmethod
    def _new_branch_transition(num_existing: int) -> nn.ModuleList:
        c = BRANCH_CHANNELS
        layers: List[nn.Module] = [nn.Identity() for _ in range(num_existing)]
        layers.append(nn.Sequential(_conv_bn(c[num_existing - 1], c[num_existing], 3, 2, relu=True)))
        return nn.ModuleList(layers)

    @staticmethod
    def _run_stage(stage: nn.Sequential, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        for module in stage:
            xs = module(xs)
        return xs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)                                         # [N,256,H/4,W/4]

        xs = [t(x) for t in self.transition1]
        xs = self._run_stage(self.stage2, xs)
        xs = xs + [self.transition2[-1](xs[-1])]
        xs = self._run_stage(self.stage3, xs)
        xs = xs + [self.transition3[-1](xs[-1])]
        xs = self._run_stage(self.stage4, xs)                      # 4 branches, /4 … /32

        return torch.cat([
            xs[0],
            self.upsample_stage_2(xs[1]),
            self.upsample_stage_3(xs[2]),
            self.upsample_stage_4(xs[3]),
        ], dim=1)                                                  # [N,480,H/4,W/4]
