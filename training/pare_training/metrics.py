"""3DPW evaluation metrics (pare-model-spec.md §11): MPJPE, PA-MPJPE and PVE in millimetres.

Joints: the Human3.6M regressor applied to a mesh gives 17 joints; the root (H36M joint 0) is
subtracted from all 17 *before* the 14 LSP-order joints are selected (constants.H36M_TO_LSP14).
PVE compares the 6890 vertices of meshes without translation and without any alignment.
All inputs are in metres; outputs are per-frame errors in mm (average them yourself).
"""
from __future__ import annotations

from typing import Dict

import torch

from pare_ros.constants import H36M_ROOT, H36M_TO_LSP14


def similarity_procrustes(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Align ``pred`` onto ``gt`` with the best similarity transform (scale, rotation, translation).

    Umeyama's solution, as PARE's ``compute_similarity_transform``: the rotation comes from the
    SVD of the cross-covariance with a det fix, so it is a proper rotation (det +1) even when the
    best orthogonal map would be a reflection.

    Args:
        pred, gt: [N, K, 3] point sets (K ≥ 3).
    Returns:
        [N, K, 3] aligned copy of ``pred``.
    """
    dtype = pred.dtype
    # float64: the SVD of nearly degenerate covariances is noticeably less accurate in float32.
    x, y = pred.double(), gt.double()
    mu_x, mu_y = x.mean(1, keepdim=True), y.mean(1, keepdim=True)
    x0, y0 = x - mu_x, y - mu_y
    var_x = (x0 ** 2).sum(dim=(1, 2))                                   # [N]
    k = x0.transpose(1, 2) @ y0                                          # [N,3,3] Σ x yᵀ
    u, s, vh = torch.linalg.svd(k)
    v = vh.transpose(1, 2)
    # det fix: flip the sign of the smallest singular direction if U Vᵀ would be a reflection.
    z = torch.eye(3, dtype=x.dtype, device=x.device).repeat(len(x), 1, 1)
    det = torch.det(u @ vh)
    z[:, 2, 2] = torch.where(det < 0, -1.0, 1.0).to(x.dtype)
    r = v @ z @ u.transpose(1, 2)                                        # maps x0 → y0: y ≈ R x
    scale = (r * k.transpose(1, 2)).sum(dim=(1, 2)) / var_x             # trace(R K) / var
    t = mu_y - scale[:, None, None] * (mu_x @ r.transpose(1, 2))
    aligned = scale[:, None, None] * (x @ r.transpose(1, 2)) + t
    return aligned.to(dtype)


def root_relative_lsp14(h36m_joints: torch.Tensor) -> torch.Tensor:
    """[N,17,3] H36M joints → [N,14,3] LSP-order joints relative to H36M joint 0."""
    rel = h36m_joints - h36m_joints[:, H36M_ROOT:H36M_ROOT + 1]
    return rel[:, list(H36M_TO_LSP14)]


def mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint Euclidean error per frame, [N,K,3] m → [N] mm (no alignment)."""
    return (pred - gt).norm(dim=-1).mean(-1) * 1000.0


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE after per-frame similarity Procrustes of ``pred`` onto ``gt``, [N] mm."""
    return mpjpe(similarity_procrustes(pred, gt), gt)


def pve(pred_vertices: torch.Tensor, gt_vertices: torch.Tensor) -> torch.Tensor:
    """Per-vertex error per frame, [N,V,3] m → [N] mm; no alignment (meshes without translation)."""
    return mpjpe(pred_vertices, gt_vertices)


def evaluate_meshes(pred_h36m: torch.Tensor, gt_h36m: torch.Tensor,
                    pred_vertices: torch.Tensor | None = None,
                    gt_vertices: torch.Tensor | None = None) -> Dict[str, torch.Tensor]:
    """The §11 protocol for one batch.

    Args:
        pred_h36m, gt_h36m: [N,17,3] H36M-regressor joints (``BodyModel.h36m_joints``), metres.
        pred_vertices, gt_vertices: optional [N,6890,3] meshes without translation, metres.
    Returns:
        dict of per-frame [N] errors in mm: ``mpjpe``, ``pa_mpjpe`` and (with vertices) ``pve``.
    """
    p, g = root_relative_lsp14(pred_h36m), root_relative_lsp14(gt_h36m)
    out = {"mpjpe": mpjpe(p, g), "pa_mpjpe": pa_mpjpe(p, g)}
    if pred_vertices is not None and gt_vertices is not None:
        out["pve"] = pve(pred_vertices, gt_vertices)
    return out
