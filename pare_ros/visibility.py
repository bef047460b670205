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

import torch


def part_visibility(segm_logits: torch.Tensor) -> torch.Tensor:
    """segm_logits [N,25,H,W] (channel 0 background) → visibility [N,24] in [0,1]."""
    n, c = segm_logits.shape[:2]
    logits = segm_logits.float().reshape(n, c, -1)
    attention = logits[:, 1:].softmax(dim=-1)               # [N,24,HW] spatial, per part
    part_prob = logits.softmax(dim=1)[:, 1:]                # [N,24,HW] per pixel, over parts
    return (attention * part_prob).sum(-1).clamp(0.0, 1.0)


def part_segmentation(segm_logits: torch.Tensor) -> torch.Tensor:
    """Arg-max part label per pixel [N,H,W] (0 background, k = SMPL part k−1)."""
    return segm_logits.argmax(dim=1)
