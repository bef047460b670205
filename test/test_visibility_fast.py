"""part_visibility's one-exponential form equals the definition (docs/visibility.md)."""
from __future__ import annotations

import pytest
import torch

import pare_ros.visibility as visibility
from pare_ros.visibility import part_visibility


def _definition(segm_logits: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """Σ_p A_j(p)·P_j(p) with the two softmaxes written out (the pre-issue-13 code)."""
    logits = segm_logits.to(dtype).flatten(2)
    attention = logits[:, 1:].softmax(dim=-1)
    part_prob = logits.softmax(dim=1)[:, 1:]
    return (attention * part_prob).sum(-1).clamp(0.0, 1.0)


def _blobs(n: int, height: float, seed: int) -> torch.Tensor:
    """Part-like logit maps: one disc per channel over a flat floor, plus noise [n,25,56,56]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(56.0), torch.arange(56.0), indexing="ij")
    cx, cy = torch.rand(n, 25, 1, 1, generator=g) * 56, torch.rand(n, 25, 1, 1, generator=g) * 56
    radius = torch.rand(n, 25, 1, 1, generator=g) * 12 + 1
    disc = (1 - ((xx - cx) ** 2 + (yy - cy) ** 2) / radius ** 2).clamp(min=-3)
    return height * disc + torch.randn(n, 25, 56, 56, generator=g)


CASES = {
    "noise x1": lambda g: torch.randn(8, 25, 56, 56, generator=g),
    "noise x4": lambda g: torch.randn(8, 25, 56, 56, generator=g) * 4,
    "noise x10 +50": lambda g: torch.randn(8, 25, 56, 56, generator=g) * 10 + 50,
    "blobs 5": lambda g: _blobs(8, 5.0, 1),
    "blobs 8": lambda g: _blobs(8, 8.0, 2),
    "one person": lambda g: torch.randn(1, 25, 56, 56, generator=g) * 3,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_form_equals_definition(case, monkeypatch):
    logits = CASES[case](torch.Generator().manual_seed(0))
    # These ranges must take the one-exponential path, not the softmax fallback.
    monkeypatch.setattr(visibility, "_part_visibility_softmax", lambda _: pytest.fail("fallback taken"))
    ours = part_visibility(logits)
    assert ours.shape == (logits.shape[0], 24) and ours.dtype == torch.float32
    truth = _definition(logits)
    # float32 rounding only: within 1e-6 of the float64 definition (the float32 softmax form
    # itself is off by up to ~2.5e-6 on these inputs)...
    assert (ours.double() - truth).abs().max().item() < 1e-6
    # ...and therefore within the float32 softmax form's own error of it.
    assert (ours - _definition(logits, torch.float32)).abs().max().item() < 4e-6
    assert truth.max().item() > 0.05          # not a vacuous comparison of near-zero scores


@pytest.mark.parametrize("spread", [90.0, 200.0])
def test_wide_logit_ranges_fall_back_to_the_softmax_form(spread, monkeypatch):
    """A pixel whose best logit lies far below the map's best would underflow the shared
    normaliser: the softmax form takes over, and the score stays finite and exact."""
    logits = _blobs(3, 5.0, 3)
    logits[:, :, :10] -= spread                      # a band of rows far below everything else
    calls = []
    fallback = visibility._part_visibility_softmax
    monkeypatch.setattr(visibility, "_part_visibility_softmax", lambda x: calls.append(1) or fallback(x))
    ours = part_visibility(logits)
    assert calls == [1]
    assert torch.isfinite(ours).all()
    assert ours.dtype == torch.float32
    # The fallback runs in float64 (float32's softmaxes are off by up to ~4e-6 here).
    assert (ours.double() - _definition(logits)).abs().max().item() < 1e-6


def test_half_precision_and_strided_inputs():
    logits = torch.randn(4, 25, 56, 56, generator=torch.Generator().manual_seed(5)) * 3
    half = logits.half()
    assert (part_visibility(half).double() - _definition(half.float())).abs().max().item() < 1e-6
    strided = torch.stack((logits, -logits), dim=-1)[..., 0]        # not contiguous
    assert (part_visibility(strided).double() - _definition(logits)).abs().max().item() < 1e-6


def test_no_people():
    assert part_visibility(torch.zeros(0, 25, 56, 56)).shape == (0, 24)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_definition():
    logits = _blobs(8, 5.0, 4)
    ours = part_visibility(logits.cuda()).cpu()
    assert (ours.double() - _definition(logits)).abs().max().item() < 1e-6
