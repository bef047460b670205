"""SMPL's skeleton (joint transforms, PARE's 49 keypoints, rest joints) in NumPy, for CPU batches.

:meth:`BodyModel.forward` on CPU tensors (outside autograd) poses the skeleton here, with or
without the mesh: the same constants and the same contractions as
:class:`.kinematics.ForwardKinematics` and :class:`.skinning.KeypointSkinning` (pointer-jumping
chain products, the keypoints' per-pair coefficients as one GEMM), written with NumPy on
zero-copy views. For the node's batches of 1-8 people the work is a few dozen operations on tiny
arrays, where a NumPy call costs ~1-3 µs and a torch one ~5-10 µs on this CPU: the mesh-free
call took 0.16 / 0.43 ms instead of 0.29 / 0.50 ms for 1 / 8 people (docs/benchmarks.md). The
mesh, where asked for, is skinned from these transforms by the torch module, so joints are the
same numbers with or without it. On CUDA, and wherever gradients are needed, the torch modules
run.
"""
from __future__ import annotations

import numpy as np
import torch


class HostJoints:
    """SMPL's skeleton posed on host arrays with a :class:`BodyModel`'s constants.

    Args:
        model: the BodyModel whose buffers, on the CPU, are used (as views: they are the
            module's own numbers, also after an in-place change).
    """

    def __init__(self, model) -> None:
        def host(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().cpu().numpy()

        self.dtype = model._joints_dirs.dtype
        self.joints_const, self.joints_dirs = host(model._joints_const), host(model._joints_dirs)
        self.ancestors = [a.tolist() for a in model.forward_kinematics._ancestors.cpu()]
        keypoints = model.keypoints
        self.coef_const, self.coef_dirs = host(keypoints.coef_const), host(keypoints.coef_dirs)
        self.pair_joints = keypoints.pair_joints.cpu().numpy()
        # KeypointSkinning's slot sums (output k = Σ of its slots' rows of [pair products,
        # joints]) as one product with a 0/1 matrix [K_out, P+1+J]: the same terms (the pad
        # row is zero), a quarter of the cost of the gather and the sum.
        n_out, width = keypoints._slots_shape
        n_joints = self.joints_dirs.shape[1] // 6                 # joints_dirs: [B, 2·J·3]
        self.select = np.zeros((n_out, len(self.pair_joints) + n_joints), self.joints_dirs.dtype)
        np.add.at(self.select, (np.repeat(np.arange(n_out), width), keypoints.slots.cpu().numpy()), 1.0)
        self.identity = np.eye(3, dtype=self.joints_dirs.dtype)

    def __call__(self, rotmats: np.ndarray, betas: np.ndarray):
        """rotmats [N,24,3,3], betas [N,B] (the model's dtype) → (world transforms [N,24,4,4],
        blend-shape features [N,B+207], rest joints [N,24,3], joints49 [N,49,3]): what
        :meth:`BodyModel.forward` builds its outputs (and the mesh) from."""
        n, n_joints = rotmats.shape[:2]
        shaped = (betas @ self.joints_dirs + self.joints_const).reshape(n, 2, n_joints, 3)
        # The local transforms and, in slot J, the identity (the root's "parent"): the chain
        # products by pointer jumping, as ForwardKinematics.
        chain = np.zeros((n, n_joints + 1, 4, 4), self.joints_dirs.dtype)
        chain[:, :n_joints, :3, :3] = rotmats
        chain[:, :n_joints, :3, 3] = shaped[:, 1]
        chain[:, :, 3, 3] = 1.0
        chain[:, n_joints, :3, :3] = self.identity
        for ancestor in self.ancestors:
            chain = chain[:, ancestor] @ chain
        world = chain[:, :n_joints]
        # The keypoints from their (keypoint, joint) pairs, as KeypointSkinning.
        features = np.concatenate([betas, (rotmats[:, 1:] - self.identity).reshape(n, 9 * (n_joints - 1))], axis=1)
        coef = (features @ self.coef_dirs + self.coef_const).reshape(n, len(self.pair_joints), 4, 1)
        frames = world[:, self.pair_joints, :3]                                   # [N,P+1,3,4]
        points = np.concatenate([(frames @ coef)[..., 0], world[:, :, :3, 3]], axis=1)     # [N,P+1+J,3]
        joints49 = self.select @ points
        return world, features, np.ascontiguousarray(shaped[:, 0]), joints49
