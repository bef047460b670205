"""part_visibility's CPU path (no shifts, OpenCV's exp) and its range guards (docs/visibility.md)."""
from __future__ import annotations

import pytest
import torch

import pare_ros.visibility as visibility
from pare_ros.visibility import part_visibility


def _definition(logits: torch.Tensor) -> torch.Tensor:
    """The two softmaxes in float64: [N,25,H,W] → [N,24]."""
    logits = logits.double().flatten(2)
    return (logits[:, 1:].softmax(-1) * logits.softmax(1)[:, 1:]).sum(-1).clamp(0.0, 1.0)


def _logits(n: int, scale: float, seed: int) -> torch.Tensor:
    return torch.randn(n, 25, 56, 56, generator=torch.Generator().manual_seed(seed)) * scale


def _shifted(logits: torch.Tensor, monkeypatch) -> torch.Tensor:
    """The shifted (device) form, run on the CPU."""
    with monkeypatch.context() as patch:
        patch.setattr(visibility, "_part_visibility_host", lambda _: None)
        return part_visibility(logits)


@pytest.mark.parametrize("n,scale", [(1, 1.0), (1, 3.0), (4, 6.0), (8, 3.0)])
def test_host_path_equals_the_definition_and_the_shifted_form(n, scale, monkeypatch):
    logits = _logits(n, scale, n)
    host = visibility._part_visibility_host(logits.flatten(2))
    assert host is not None and host.shape == (n, 24) and host.dtype == torch.float32
    assert (host.double() - _definition(logits)).abs().max().item() < 1e-6
    assert (host - _shifted(logits, monkeypatch)).abs().max().item() < 1e-6
    assert torch.equal(part_visibility(logits), host)


@pytest.mark.parametrize("name,edit", [
    ("best logit 60", lambda x: x.add_(60.0)),                        # e² would overflow
    ("one logit 90", lambda x: x[0, 3, 20, 20].fill_(90.0)),           # e would be inf
    ("one person's channel 95 below", lambda x: x[1, 7].sub_(95.0)),    # e would be denormal
    ("a channel and a band 55 below", lambda x: (x[:, 7].sub_(55.0), x[:, :, :5].sub_(55.0))),
    ("a band 95 below", lambda x: x[:, :, :5].sub_(95.0)),             # S < 1e-30: softmax form
])
def test_out_of_range_maps_leave_the_host_path_and_stay_exact(name, edit):
    logits = _logits(2, 2.0, 7)
    edit(logits)
    assert visibility._part_visibility_host(logits.flatten(2)) is None
    ours = part_visibility(logits)
    assert torch.isfinite(ours).all()
    assert (ours.double() - _definition(logits)).abs().max().item() < 1e-6


def test_near_the_guards_the_host_path_is_still_exact():
    """Logits from -86.9 to 43 (e from 1.8e-38 to 4.7e18), with all of a channel below -60."""
    logits = _logits(2, 1.0, 8)
    logits[:, 2] += 43.0 - logits[:, 2].amax()
    logits[:, 9] += -86.9 - logits[:, 9].amin()
    logits[:, 9] = logits[:, 9].clamp(max=-60.0)
    assert visibility._part_visibility_host(logits.flatten(2)) is not None
    assert (part_visibility(logits).double() - _definition(logits)).abs().max().item() < 1e-6
    # A band of pixels whose best logit is ~-70 (S ~ 1e-30: the shifted form's softmax case).
    logits = _logits(2, 2.0, 7)
    logits[:, :, :5] -= 75.0
    assert visibility._part_visibility_host(logits.flatten(2)) is not None
    assert (part_visibility(logits).double() - _definition(logits)).abs().max().item() < 1e-6


def test_tensors_that_require_grad_take_the_torch_form():
    """(No .numpy() of those; the torch form's in-place ops make it a forward-only score.)"""
    logits = _logits(1, 3.0, 9)
    ours = part_visibility(logits.clone().requires_grad_())
    assert (ours.detach().double() - _definition(logits)).abs().max().item() < 1e-6


def test_the_input_is_left_unchanged():
    logits = _logits(2, 3.0, 10)
    copy = logits.clone()
    part_visibility(logits)
    assert torch.equal(logits, copy)
