"""Rotation conversions shared by the network, the body model and the ROS layer.

All functions are batched over leading dimensions and work on float32/float64 tensors, except
:func:`rotmat_to_axis_angle` (NumPy arrays).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


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


# Flat (row-major) indices of R21, R02, R10 | R12, R20, R01 | R00, R11, R22: the antisymmetric
# part's two halves and the diagonal, gathered at once.
_GATHER = np.array([7, 2, 3, 5, 6, 1, 0, 4, 8])


def rotmat_to_axis_angle(rotmat: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] → axis-angle [..., 3] (angle in [0, π]), float64 NumPy.

    NumPy rather than Torch: it runs on host results (a few hundred matrices a frame), where
    Torch's per-op overhead would cost ~5× more. Angle from atan2(sin θ, cos θ), with
    sin θ·axis the antisymmetric part of R and cos θ from its trace; beyond 120° the axis
    comes from the symmetric part instead ((R + Rᵀ) − 2·cos θ·I = 2·(1 − cos θ)·a·aᵀ, its
    row of the largest diagonal entry), where the antisymmetric part vanishes as θ → π.
    """
    m = np.asarray(rotmat, dtype=np.float64)
    g = m.reshape(-1, 9)[:, _GATHER]                                            # [M,9]
    sin_axis = (g[:, :3] - g[:, 3:6]) / 2
    cos = (g[:, 6:].sum(-1) - 1) / 2
    sin = np.sqrt((sin_axis * sin_axis).sum(-1))
    angle = np.arctan2(sin, cos)
    aa = sin_axis * (angle / np.maximum(sin, np.finfo(np.float64).tiny))[:, None]   # θ/sin θ → 1 at 0
    near_pi = np.flatnonzero(cos < -0.5)
    if len(near_pi):
        r = m.reshape(-1, 3, 3)[near_pi]
        i, j = np.arange(len(near_pi)), g[near_pi, 6:].argmax(-1)   # m_jj = cos θ + (1 − cos θ)·a_j²
        axis = (r + r.transpose(0, 2, 1))[i, j]                      # ∝ a_j·a, a_j > 0 once
        axis[i, j] -= 2 * cos[near_pi]                               # the 2·cos θ·I term removed
        # Unit length, and the sign of sin θ·a_j; at exactly π (sin θ·a_j = 0) either sign is
        # right: +, as the quaternion route with w ≥ 0 gives.
        angle_j = np.where(sin_axis[near_pi, j] < 0, -angle[near_pi], angle[near_pi])
        aa[near_pi] = axis * (angle_j / np.sqrt((axis * axis).sum(-1)))[:, None]
    return aa.reshape(*m.shape[:-2], 3)
