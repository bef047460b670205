"""Forward kinematics of a joint tree in a handful of batched operations.

smplx's ``batch_rigid_transform`` walks the tree one joint at a time (23 small matmuls for
SMPL). Here every joint's world transform is the product of the local transforms along its
chain to the root, built by pointer jumping: after step s each joint holds the product of its
own and its 2^s - 1 nearest ancestors' transforms, so ``ceil(log2(depth + 1))`` steps of one
gather and one batched 4×4 matmul cover the tree (4 for SMPL's depth 8). On the CPU a small
torch op costs ~10 µs whatever its size: fewer, larger ops is what makes this fast. The products
are smplx's, only associated differently (float rounding, ~1e-7).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


class ForwardKinematics(torch.nn.Module):
    """World transforms of a joint tree from local rotations and parent-relative offsets.

    Args:
        parents: parent index of each joint, ``parents[root] < 0``; any order.
    """

    def __init__(self, parents: Sequence[int]) -> None:
        super().__init__()
        parents = [int(p) for p in parents]
        n = len(parents)
        depth = [0] * n
        for j in range(n):                     # walk up: no assumption on the joint order
            k = parents[j]
            while k >= 0:
                depth[j] += 1
                k = parents[k]
        # Slot n holds the identity: the root's "parent", and its own.
        ancestor = [p if p >= 0 else n for p in parents] + [n]
        steps = []
        for _ in range(max(1, math.ceil(math.log2(max(depth) + 1)))):
            steps.append(torch.tensor(ancestor))
            ancestor = [ancestor[a] for a in ancestor]           # 2^s → 2^(s+1) joints up
        # Buffers, so that they move with the model (no host→device copy per frame).
        self.register_buffer("_ancestors", torch.stack(steps), persistent=False)
        self.register_buffer("_bottom", torch.tensor([0.0, 0.0, 0.0, 1.0]), persistent=False)
        self.register_buffer("_identity", torch.eye(4), persistent=False)

    def forward(self, rotations: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """World transforms [N, J, 4, 4] (``[..., :3, :3]`` the rotation, ``[..., :3, 3]`` the
        posed joint) from local rotations [N, J, 3, 3] and each joint's rest position relative
        to its parent [N, J, 3] (the root's: its own position)."""
        n, joints = rotations.shape[:2]
        top = torch.cat([rotations, offsets[..., None]], dim=-1)                          # [N,J,3,4]
        local = torch.cat([top, self._bottom.to(top.dtype).expand(n, joints, 1, 4)], dim=-2)
        chain = torch.cat([local, self._identity.to(top.dtype).expand(n, 1, 4, 4)], dim=1)
        for ancestor in self._ancestors:
            chain = chain.index_select(1, ancestor) @ chain
        return chain[:, :joints]
