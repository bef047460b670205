"""pare_training.metrics: hand-computed cases, scipy cross-checks, invariances, det fix."""
import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import procrustes
from scipy.spatial.transform import Rotation

from pare_training import metrics


def _rand_rot(rng, n):
    return torch.from_numpy(Rotation.random(n, random_state=rng).as_matrix())


def test_mpjpe_hand_computed():
    gt = torch.zeros(1, 2, 3, dtype=torch.float64)
    pred = torch.tensor([[[0.003, 0.004, 0.0], [0.0, 0.0, 0.010]]], dtype=torch.float64)
    # joint errors 5 mm and 10 mm → 7.5 mm
    assert metrics.mpjpe(pred, gt).item() == pytest.approx(7.5)
    assert metrics.pve(pred, gt).item() == pytest.approx(7.5)


def test_pa_hand_computed_scaled_square():
    # pred is gt scaled by 2 and shifted: PA removes both, plain MPJPE does not.
    gt = torch.tensor([[[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]], dtype=torch.float64)
    pred = 2 * gt + torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
    assert metrics.pa_mpjpe(pred, gt).item() == pytest.approx(0.0, abs=1e-6)
    # by hand: errors |p - g| = |g + (0.5,0,0)| for the 4 corners
    expected = np.mean([0.5, 1.5, np.hypot(1.5, 1), np.hypot(0.5, 1)]) * 1000
    assert metrics.mpjpe(pred, gt).item() == pytest.approx(expected)


def test_procrustes_matches_scipy_on_random_cases():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(20, 14, 3))
    gt = rng.normal(size=(20, 14, 3))
    ours = metrics.similarity_procrustes(torch.from_numpy(pred), torch.from_numpy(gt)).numpy()
    for i in range(len(pred)):
        # scipy.spatial.procrustes standardises both sets (centre, unit Frobenius norm) and
        # returns disparity = Σ|a − b|² of the standardised sets: compare it to our residual.
        mtx1, mtx2, disparity = procrustes(gt[i], pred[i])
        g0 = gt[i] - gt[i].mean(0)
        ours_disp = ((ours[i] - gt[i]) ** 2).sum() / (g0 ** 2).sum()
        # scipy allows reflections; compare only where the optimum is a proper rotation.
        r, _ = orthogonal_procrustes(pred[i] - pred[i].mean(0), g0)
        if np.linalg.det(r) > 0:
            assert ours_disp == pytest.approx(disparity, rel=1e-9, abs=1e-12)
            # and with orthogonal_procrustes' rotation plus the optimal scale, the same alignment
            p0 = pred[i] - pred[i].mean(0)
            scale = np.trace((p0 @ r).T @ g0) / (p0 ** 2).sum()
            np.testing.assert_allclose(ours[i], scale * p0 @ r + gt[i].mean(0), atol=1e-9)
        else:
            assert ours_disp >= disparity - 1e-12   # constrained optimum can only be worse


def test_pa_mpjpe_zero_for_similarity_transform():
    rng = np.random.default_rng(1)
    gt = torch.from_numpy(rng.normal(size=(8, 14, 3)))
    rot = _rand_rot(rng, 8)
    scale = torch.from_numpy(rng.uniform(0.5, 2.0, size=(8, 1, 1)))
    shift = torch.from_numpy(rng.normal(size=(8, 1, 3)))
    pred = scale * gt @ rot.transpose(1, 2) + shift
    assert metrics.mpjpe(pred, gt).min() > 1.0
    np.testing.assert_allclose(metrics.pa_mpjpe(pred, gt).numpy(), 0.0, atol=1e-6)
    # float32 input works and keeps its dtype
    out = metrics.similarity_procrustes(pred.float(), gt.float())
    assert out.dtype == torch.float32


def test_reflection_is_not_used_det_fix():
    rng = np.random.default_rng(2)
    gt = torch.from_numpy(rng.normal(size=(1, 10, 3)))
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    pred = gt @ mirror                     # exact mirror image: only a reflection aligns it
    aligned = metrics.similarity_procrustes(pred, gt)
    # recover the linear map the alignment applied and check it is a proper rotation ×scale
    p0 = pred[0] - pred[0].mean(0)
    a0 = aligned[0] - aligned[0].mean(0)
    m = torch.linalg.lstsq(p0, a0).solution
    s = torch.det(m).sign()
    assert s > 0
    assert metrics.pa_mpjpe(pred, gt).item() > 1.0   # a reflection would have given 0


def test_evaluate_meshes_root_before_selection():
    rng = np.random.default_rng(3)
    gt = torch.from_numpy(rng.normal(size=(2, 17, 3)))
    pred = gt.clone()
    # moving only the root (joint 0, not among the 14) shifts all 14 relative joints.
    pred[:, 0] += torch.tensor([0.01, 0.0, 0.0], dtype=torch.float64)
    out = metrics.evaluate_meshes(pred, gt)
    np.testing.assert_allclose(out["mpjpe"].numpy(), 10.0, atol=1e-9)
    np.testing.assert_allclose(out["pa_mpjpe"].numpy(), 0.0, atol=1e-6)
    rel = metrics.root_relative_lsp14(gt)
    assert rel.shape == (2, 14, 3)
    torch.testing.assert_close(rel[:, 0], gt[:, 6] - gt[:, 0])      # R ankle first
    torch.testing.assert_close(rel[:, 13], gt[:, 10] - gt[:, 0])    # head top last
    v = torch.zeros(2, 6890, 3)
    assert "pve" in metrics.evaluate_meshes(pred, gt, v, v + 0.001)


def test_pw3d_occluded_sequences_from_image_paths():
    from pare_training.evaluate import pw3d_occluded

    flags = pw3d_occluded(["imageFiles/courtyard_backpack_00/image_00000.jpg",
                           "imageFiles/downtown_walking_00/image_00010.jpg",
                           "imageFiles/outdoors_slalom_01/image_00003.jpg",
                           "imageFiles/flat_guitar_01/image_00100.jpg",
                           "imageFiles/courtyard_basketball_00/image_00001.jpg"])
    assert flags.tolist() == [True, False, True, True, True]
