"""Per-part visibility from PARE's part attention and part segmentation.

PARE pools the features for joint j with a spatial softmax A_j of its part logit map. Its
part-segmentation head, read as a per-pixel softmax over the 25 channels, gives P_j(p): the
soft probability that pixel p shows part j. The score is the soft product

    visibility_j = Σ_p A_j(p) · P_j(p)          ∈ [0, 1]

(no arg-max anywhere): the attention-weighted mean of part j's per-pixel probability. When the
part is in view its attention concentrates on its own pixels and the score is high; when it is
occluded the network (as the PARE paper shows) spreads the attention over other visible body
parts and the surroundings, where P_j is low, and the score drops.

Known biases (docs/visibility.md): a constant added to channel j leaves A_j (and everything PARE
regresses) unchanged but raises P_j, so the score depends on per-channel logit offsets the
network never calibrated; at an equal logit margin small parts score lower than large ones.
A documented heuristic, not a calibrated probability: use it as a soft weight, never as a hard
gate, until it is calibrated with real weights.
"""
from __future__ import annotations

import math
from typing import Optional

import cv2
import torch

_LOG2E = math.log2(math.e)
#: Smallest per-pixel normaliser the one-exponential path accepts (far above float32's
#: 1.2e-38, so every term that matters keeps full precision; see :func:`part_visibility`).
_MIN_NORMALISER = 1e-30
#: Logits the CPU path takes without shifts (:func:`_part_visibility_host`): exp(-87) = 1.6e-38
#: is still normal, and exp(43)² = 2.2e37 finite.
_HOST_LOGITS = (-87.0, 43.0)


def part_visibility(segm_logits: torch.Tensor) -> torch.Tensor:
    """segm_logits [N,25,H,W] (channel 0 background) → visibility [N,24] in [0,1], same device.

    Computed with one exponential per logit instead of two softmaxes (a softmax over the 25
    channels runs at stride H·W and was the slowest op of post-processing). With
    ``M_c = max_p L_c(p)``, ``G = max_c M_c``, ``a_c(p) = exp(L_c(p) − M_c)`` (≤ 1),
    ``z_c = Σ_p a_c(p)`` and ``w_c = exp(M_c − G)``:

        A_j(p) = a_j(p) / z_j,   P_j(p) = w_j a_j(p) / s(p),   s(p) = Σ_c w_c a_c(p)
        visibility_j = (w_j / z_j) · Σ_p a_j(p)² / s(p)

    (a batched matrix product for the sum over c). ``s(p) = exp(max_c L_c(p) − G)``
    up to a factor in [1, 25], so it only underflows where a pixel's best logit lies ~70
    below the map's best; then the softmax form, exact for any range, is used instead.
    CPU tensors take :func:`_part_visibility_host` first (the same score, without the shifts).
    """
    logits = segm_logits.float().flatten(2)                                # [N,25,HW]
    if logits.device.type == "cpu" and not logits.requires_grad and logits.numel():
        host = _part_visibility_host(logits)
        if host is not None:
            return host
    peak = logits.amax(-1, keepdim=True)                                   # [N,25,1]   M_c
    # exp2 of the scaled difference: half the cost of exp, and the difference is formed
    # before scaling so the rounding stays relative to L − M_c (shift-invariant).
    a = torch.sub(logits, peak).mul_(_LOG2E).exp2_()                       # [N,25,HW]  a_c
    z = a[:, 1:].sum(-1)                                                   # [N,24]     z_j
    w = (peak - peak.amax(1, keepdim=True)).exp_()                         # [N,25,1]   w_c
    s = torch.bmm(w.transpose(1, 2), a)                                    # [N,1,HW]   s(p)
    # (A host sync on CUDA; the estimator copies the results to the host right after.)
    if s.numel() and s.amin() < _MIN_NORMALISER:
        return _part_visibility_softmax(logits)
    # Σ_p by torch's sum (pairwise) rather than a second matrix product: BLAS's running
    # float32 sum over 3136 pixels was off by ~1e-6.
    num = a[:, 1:].square_().mul_(s.reciprocal_()).sum(-1)                 # [N,24]
    return num.mul_(w[:, 1:, 0]).div_(z).clamp_(0.0, 1.0)


def _part_visibility_host(logits: torch.Tensor) -> Optional[torch.Tensor]:
    """The score of a CPU tensor, logits [N,25,HW] float32 → [N,24] float32, or None (range).

    The same formula with the shifts M_c and G left out (they cost two passes over the map):
    ``e_c = exp(L_c)``, ``S(p) = Σ_c e_c(p)``, ``visibility_j = Σ_p e_j(p)² / S(p) / Σ_p e_j(p)``.
    The exponential is OpenCV's (SIMD: 2x torch's exp2, 5x NumPy's float32 exp here, within
    2.3e-7 relative of the exact one), on the tensor's zero-copy NumPy view; the rest is torch's
    on that buffer (its sums are pairwise, and its reductions and broadcast product took half
    NumPy's time). Six passes over the map and one min/max instead of the shifted form's nine.

    Without the shifts every value must stay in float32's normal range. Logits in [-87, 43]
    keep each ``e`` normal (OpenCV's exp, like torch's, is ~80x slower where its result is
    denormal or infinite, so the range is checked before it) and ``e²`` finite; then every
    sum keeps its relative precision, and ``min S · min Σ_p e_j ≥ 1e-30`` bounds the error of
    a denormal ``e_j²/S`` term by ~1e-15. Otherwise None, and the shifted form takes over.
    """
    n, channels, pixels = logits.shape
    flat = logits.numpy().reshape(n * channels, pixels)                   # [N·25,HW], no copy
    lowest, highest = cv2.minMaxLoc(flat)[:2]
    if not (_HOST_LOGITS[0] <= lowest and highest <= _HOST_LOGITS[1]):
        return None
    e = torch.from_numpy(cv2.exp(flat).reshape(n, channels, pixels))      # [N,25,HW] e_c(p)
    s = e.sum(1, keepdim=True)                                             # [N,1,HW]  S(p)
    parts = e[:, 1:]                                                       # [N,24,HW] e_j
    z = parts.sum(-1)                                                      # [N,24]    Σ_p e_j
    if not s.min().item() * z.min().item() >= _MIN_NORMALISER:            # (NaN fails too)
        return None
    num = parts.square_().mul_(s.reciprocal_()).sum(-1)                    # [N,24]
    return num.div_(z).clamp_(0.0, 1.0)


def _part_visibility_softmax(logits: torch.Tensor) -> torch.Tensor:
    """The definition with two softmaxes: logits [N,25,HW] → [N,24] float32.

    Only for the rare maps whose normaliser underflows, so it runs in float64: float32's
    softmaxes are off by up to ~4e-6, float64's rounded to float32 by under 1e-7.
    """
    logits = logits.double()
    attention = logits[:, 1:].softmax(dim=-1)               # [N,24,HW] spatial, per part
    part_prob = logits.softmax(dim=1)[:, 1:]                # [N,24,HW] per pixel, over parts
    return (attention * part_prob).sum(-1).clamp(0.0, 1.0).float()


def part_segmentation(segm_logits: torch.Tensor) -> torch.Tensor:
    """Arg-max part label per pixel [N,H,W] (0 background, k = SMPL part k−1)."""
    return segm_logits.argmax(dim=1)
