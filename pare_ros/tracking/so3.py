"""Rotation log, exp and projection onto SO(3) for stacks of 3×3 matrices, in plain NumPy.

The smoother runs these on all 24·P joint rotations of a frame at once. scipy's ``Rotation``
costs 30–100 µs per construction and ``np.linalg.svd``/``det`` loop over the matrices in
LAPACK (~5 µs per 3×3), so for a few hundred small matrices a handful of whole-stack array
operations with closed-form 3×3 algebra is several times cheaper. Conventions follow scipy:
rotation vectors are axis·angle with angle ∈ [0, π]; matrices act on column vectors.
"""
from __future__ import annotations

import numpy as np

_EYE3 = np.eye(3)
_ONES3, _ONES9 = np.ones(3), np.ones(9)              # (v * v) @ _ONES3: sums as one matmul (einsum: ~2 µs more)
# Largest deviation of MᵀM from I (max entry) for which :func:`nearest_rotation` uses the
# series of (MᵀM)^(-1/2) to second order: its first omitted term, 5/16·E³, is < 1e-16 there
# (float32 rotations deviate by ~1e-7). Larger deviations take the SVD.
_SERIES_MAX_DEVIATION = 2e-6
_TINY = 1e-300                                       # guards θ/|v| at v = 0 (then the result is 0)


def _quaternion_candidates_table():
    """(A [9,16], c [16]) with ``D.reshape(9) @ A + c`` = Shepperd's four candidates for the
    quaternion of a rotation D, flattened [4·4]. Candidate k (k = w, x, y, z) is 4·q_k·q in
    the order (w, x, y, z); its own component k is 4·q_k², so the candidate whose own
    component is largest is the well-conditioned one (q_k² ≥ 1/4)."""

    def candidates(d):
        t = d[0, 0] + d[1, 1] + d[2, 2]
        return np.array([
            [1 + t, d[2, 1] - d[1, 2], d[0, 2] - d[2, 0], d[1, 0] - d[0, 1]],
            [d[2, 1] - d[1, 2], 1 + 2 * d[0, 0] - t, d[0, 1] + d[1, 0], d[0, 2] + d[2, 0]],
            [d[0, 2] - d[2, 0], d[0, 1] + d[1, 0], 1 + 2 * d[1, 1] - t, d[1, 2] + d[2, 1]],
            [d[1, 0] - d[0, 1], d[0, 2] + d[2, 0], d[1, 2] + d[2, 1], 1 + 2 * d[2, 2] - t],
        ]).reshape(16)

    const = candidates(np.zeros((3, 3)))
    return np.stack([candidates(e) - const for e in np.eye(9).reshape(9, 3, 3)]), const


_CANDIDATES, _CANDIDATES_CONST = _quaternion_candidates_table()


def _quaternion_to_matrix_table() -> np.ndarray:
    """[16,9]: ``(q ⊗ q).reshape(16) @ table`` = the rotation matrix (flattened) of a unit
    quaternion q = (w, x, y, z)."""

    def matrix(p):                                   # p = q ⊗ q, p[i, j] = q_i q_j
        (ww, wx, wy, wz), (_, xx, xy, xz), (_, _, yy, yz), (_, _, _, zz) = p
        return np.array([[ww + xx - yy - zz, 2 * (xy - wz), 2 * (xz + wy)],
                         [2 * (xy + wz), ww - xx + yy - zz, 2 * (yz - wx)],
                         [2 * (xz - wy), 2 * (yz + wx), ww - xx - yy + zz]]).reshape(9)

    return np.stack([matrix(e) for e in np.eye(16).reshape(16, 4, 4)])


_QUAT_TO_MATRIX = _quaternion_to_matrix_table()


def log(rotmats) -> np.ndarray:
    """Rotations [...,3,3] → rotation vectors [...,3] (angle ∈ [0, π]).

    Through the quaternion (Shepperd's method: per matrix the best-conditioned of four
    formulas, accurate at every angle including π), unnormalised: with c = (w, v) ∝ ±q,
    θ = 2·atan2(|v|, |w|) and the rotation vector is sign(w)·v·θ/|v|. θ/|v| has no
    cancellation as θ → 0 (atan2 is accurate relative to |v|), and v = 0 gives 0 exactly.
    At exactly π both directions are the same rotation; which one is returned is unspecified.
    """
    m = np.asarray(rotmats, dtype=np.float64)
    shape = m.shape[:-2]
    cand = m.reshape(-1, 9) @ _CANDIDATES + _CANDIDATES_CONST              # [N,16]
    best = cand[:, ::5].argmax(1)                                          # own components
    if np.count_nonzero(best):
        c = cand.reshape(-1, 4, 4)[np.arange(len(cand)), best]             # [N,4] ∝ ±(w, x, y, z)
        v = c[:, 1:]
        norm_v = np.sqrt((v * v) @ _ONES3)
        angle = np.copysign(2 * np.arctan2(norm_v, np.abs(c[:, 0])), c[:, 0])
    else:   # every w candidate is the best (the One Euro's small steps): a view, and w > 0 (the
        v = cand[:, 1:4]                            # four own components sum to 4): no sign
        norm_v = np.sqrt((v * v) @ _ONES3)
        angle = 2 * np.arctan2(norm_v, cand[:, 0])
    return (v * (angle / np.maximum(norm_v, _TINY))[:, None]).reshape(*shape, 3)


def exp(rotvecs) -> np.ndarray:
    """Rotation vectors [...,3] → rotations [...,3,3].

    Through the unit quaternion q = (cos(θ/2), sinc(θ/2)·v/2), sinc(x) = sin(x)/x (no
    cancellation as θ → 0), and R = (q ⊗ q) @ a constant table (the quadratic form of the
    quaternion-to-matrix formula, as scipy evaluates it): orthonormal to rounding at any θ.
    """
    v = np.asarray(rotvecs, dtype=np.float64)
    shape = v.shape[:-1]
    v = v.reshape(-1, 3)
    half = np.sqrt((v * v) @ _ONES3) / 2
    sinc_half = np.sin(half)
    np.divide(sinc_half, half, out=sinc_half, where=half > 0)              # θ = 0: stays 0, and v = 0
    q = np.empty((len(v), 4))
    q[:, 0] = np.cos(half)
    q[:, 1:] = (sinc_half / 2)[:, None] * v
    return ((q[:, :, None] * q[:, None, :]).reshape(-1, 16) @ _QUAT_TO_MATRIX).reshape(*shape, 3, 3)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle (rad) between rotation stacks a, b [...,3,3]."""
    c = ((a * b).reshape(*a.shape[:-2], 9) @ _ONES9 - 1) / 2   # trace(aᵀb) = Σ a∘b
    return np.arccos(np.minimum(np.maximum(c, -1.0), 1.0))


def nearest_rotation(matrices) -> np.ndarray:
    """[...,3,3] → the nearest proper rotations (Frobenius; det +1): tolerates noise and
    reflections.

    The nearest rotation of M = UΣVᵀ is U·diag(1, 1, det UVᵀ)·Vᵀ. For the near-orthonormal
    matrices a network outputs (det > 0) that is the polar factor M(MᵀM)^(-1/2), here
    M(I − E/2 + 3E²/8) with E = MᵀM − I: three matrix products on the whole stack instead of
    one LAPACK SVD per matrix. The others (noisy, scaled, reflected) take the SVD.
    """
    m = np.asarray(matrices, dtype=np.float64)
    shape = m.shape
    m = m.reshape(-1, 3, 3)
    e = m.transpose(0, 2, 1) @ m - _EYE3
    out = m @ (_EYE3 - e / 2 + 0.375 * (e @ e))
    # Two whole-stack reductions settle the usual stack (all near-orthonormal, det > 0); only
    # a stack with some other matrix builds the per-matrix mask. NaN fails both tests: mask.
    det = _det(m)
    if not (np.maximum.reduce(np.abs(e), None, initial=0.0) <= _SERIES_MAX_DEVIATION
            and np.minimum.reduce(det, initial=1.0) > 0):
        slow = (np.abs(e).reshape(-1, 9).max(1, initial=0.0) > _SERIES_MAX_DEVIATION) | ~(det > 0)
        if np.count_nonzero(slow):
            out[slow] = _nearest_rotation_svd(m[slow])
    return out.reshape(shape)


def _nearest_rotation_svd(m: np.ndarray) -> np.ndarray:
    """[N,3,3] → nearest proper rotations [N,3,3] through the SVD (any finite input)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(_det(u @ vt))
    u[..., :, 2] *= np.where(d == 0, 1.0, d)[..., None]
    return u @ vt


def _det(m: np.ndarray) -> np.ndarray:
    """[N,3,3] → determinants [N] by cofactor expansion (np.linalg.det: one LU per matrix)."""
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.reshape(-1, 9).T
    return m00 * (m11 * m22 - m12 * m21) - m01 * (m10 * m22 - m12 * m20) + m02 * (m10 * m21 - m11 * m20)
