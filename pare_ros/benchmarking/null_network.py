"""A zero-cost stand-in for the PARE network, for measuring the frame pipeline alone.

:class:`NullNetwork` honours the backend contract (:mod:`pare_ros.backends.contract`) but does
no inference: it returns fixed, plausible outputs of the right shapes — an upright person
facing the camera with a slightly bent, seeded pose, average shape, a weak-perspective camera
that fills the crop, and seeded part-segmentation logits — so that everything downstream (SMPL,
placement, visibility, smoothing, tracking, messages) does the same work as with the real
network. On a GPU machine this is what the frame costs around a network of ~0 ms.

It is a **benchmark tool**: it is not registered in :func:`pare_ros.backends.select.select_backend`
and the node cannot select it. Outputs are views of tensors computed once (read-only by
contract: the estimator never writes into its backend's outputs).
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from ..backends.contract import OUTPUT_SHAPES
from ..geometry import axis_angle_to_rotmat

#: Global orient of an upright person facing the camera: SMPL's y-up body turned by π about
#: the optical x axis (camera y points down, z away from the camera).
UPRIGHT_FACING_CAMERA = (np.pi, 0.0, 0.0)


class NullNetwork:
    """``images [N,3,224,224] → {pred_pose [N,24,3,3], pred_shape [N,10], pred_cam [N,3],
    pred_segm_mask [N,25,56,56]}`` (float32, on ``device``), without looking at the images.

    Args:
        max_batch: outputs are precomputed for this many people (grown on demand).
        device: where the outputs live (the estimator's device).
        seed: the fixed pose / logits.
    """

    def __init__(self, max_batch: int = 8, device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.device = torch.device(device)
        self.seed = seed
        self.calls = 0
        self._out: Dict[str, torch.Tensor] = {}
        self._build(max_batch)

    def _build(self, n: int) -> None:
        rng = np.random.default_rng(self.seed)
        axis_angle = rng.normal(0.0, 0.15, (n, 24, 3))          # a mildly bent pose per person
        axis_angle[:, 0] = UPRIGHT_FACING_CAMERA
        rotmats = axis_angle_to_rotmat(torch.as_tensor(axis_angle, dtype=torch.float32).reshape(-1, 3))
        cam = np.stack([np.full(n, 0.9), rng.normal(0, 0.05, n), rng.normal(0.2, 0.05, n)], 1)
        self._out = {
            "pred_pose": rotmats.reshape(n, 24, 3, 3),
            "pred_shape": torch.as_tensor(rng.normal(0, 0.5, (n, 10)), dtype=torch.float32),
            "pred_cam": torch.as_tensor(cam, dtype=torch.float32),
            "pred_segm_mask": torch.as_tensor(rng.normal(0, 2.0, (n, 25, 56, 56)), dtype=torch.float32),
        }
        self._out = {k: v.to(self.device).contiguous() for k, v in self._out.items()}
        for name, value in self._out.items():
            assert tuple(value.shape[1:]) == OUTPUT_SHAPES[name], name

    def __call__(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        n = int(images.shape[0])
        if n > self._out["pred_pose"].shape[0]:
            self._build(n)
        self.calls += 1
        return {name: value[:n] for name, value in self._out.items()}
