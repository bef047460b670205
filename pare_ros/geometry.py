"""Rotation conversions shared by the network, the body model and the ROS layer.

All functions are batched over leading dimensions and work on float32/float64 tensors, except
:func:`rotmat_to_axis_angle` (NumPy arrays).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .tracking.so3 import log as so3_log


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """PARE/SPIN 6D rotation representation → rotation matrices.

    Args:
        x: [..., 6]. The six numbers are a 3×2 matrix stored row-major, i.e. the two column
            vectors are interleaved: a1 = (x0, x2, x4), a2 = (x1, x3, x5).
    Returns:
        [..., 3, 3] with columns (b1, b2, b1 × b2) from Gram-Schmidt on (a1, a2).
    """
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_rot6d(rotmat: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rot6d_to_rotmat`: [..., 3, 3] → [..., 6] (first two columns, row-major)."""
    return rotmat[..., :, :2].reshape(*rotmat.shape[:-2], 6)


def axis_angle_to_rotmat(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula. aa: [..., 3] (axis × angle, rad) → [..., 3, 3]."""
    angle = aa.norm(dim=-1, keepdim=True).unsqueeze(-1)          # [...,1,1]
    small = angle < 1e-8
    axis = aa / angle.squeeze(-1).clamp_min(1e-8)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), dim=-1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    rot = eye + torch.sin(angle) * k + (1 - torch.cos(angle)) * (k @ k)
    # First-order expansion near zero keeps the map smooth and exact to O(θ²).
    k_raw = torch.stack((zero, -aa[..., 2], aa[..., 1], aa[..., 2], zero, -aa[..., 0],
                         -aa[..., 1], aa[..., 0], zero), dim=-1).reshape_as(k)
    return torch.where(small, eye + k_raw, rot)


def rotmat_to_quaternion(rotmat: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] → unit quaternions [..., 4] as (x, y, z, w), w ≥ 0.

    Uses the numerically stable branch selection (largest diagonal term) so that rotations
    near 180° are handled exactly.
    """
    m = rotmat
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    candidates = torch.stack((
        torch.stack((m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1], 1 + trace), -1),
        torch.stack((1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0],
                     m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]), -1),
        torch.stack((m[..., 0, 1] + m[..., 1, 0], 1 + m11 - m00 - m22,
                     m[..., 1, 2] + m[..., 2, 1], m[..., 0, 2] - m[..., 2, 0]), -1),
        torch.stack((m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                     1 + m22 - m00 - m11, m[..., 1, 0] - m[..., 0, 1]), -1),
    ), dim=-2)                                                    # [...,4,4]
    choice = torch.stack((trace, m00, m11, m22), -1).argmax(-1)
    q = torch.gather(candidates, -2, choice[..., None, None].expand(*choice.shape, 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., 3:4] < 0, -q, q)


def rotmat_to_axis_angle(rotmat: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] → axis-angle [..., 3] (angle in [0, π]), float64 NumPy.

    NumPy rather than Torch: it runs on host results (a few hundred matrices a frame), where
    Torch's per-op overhead would cost ~5× more. The smoother's SO(3) log
    (:func:`pare_ros.tracking.so3.log`: Shepperd's quaternion, accurate at every angle
    including π; = SciPy's ``as_rotvec`` to 1e-15).
    """
    return so3_log(np.asarray(rotmat, dtype=np.float64))
