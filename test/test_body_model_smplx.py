"""BodyModel's own batched SMPL forward against smplx 0.1.28's ``SMPL.forward(pose2rot=False)``.

The reference is smplx itself, run on the model's own ``smplx.SMPL`` (same files, same float32
data): mesh, joints, PARE's 49 keypoints and rest joints within 1e-6 m, for batch sizes 1..16,
mild to extreme poses and large shapes; mesh-free and vertex-subset paths give the same rows.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_ros.body_model import BodyModel, write_synthetic_model_dir
from pare_ros.body_model.kinematics import ForwardKinematics
from pare_ros.constants import JOINT49_FROM_54, SMPL_PARENTS

ATOL = 1e-6  # metres


@pytest.fixture(scope="module")
def body_model(tmp_path_factory):
    root = write_synthetic_model_dir(tmp_path_factory.mktemp("smplx_ref"), genders=("neutral",),
                                     formats=("npz",))
    return BodyModel.from_dir(root)


def _inputs(n, seed, scale, beta_scale=2.0):
    rng = np.random.default_rng(seed)
    rot = Rotation.from_rotvec(rng.normal(scale=scale, size=(n * 24, 3))).as_matrix()
    return (torch.tensor(rot, dtype=torch.float32).view(n, 24, 3, 3),
            torch.tensor(rng.normal(scale=beta_scale, size=(n, 10)), dtype=torch.float32))


def _smplx(body_model, rot, betas):
    """smplx's forward + PARE's keypoint selection (what BodyModel computed before)."""
    out = body_model.smpl(betas=betas, global_orient=rot[:, :1], body_pose=rot[:, 1:], pose2rot=False)
    extra = torch.einsum("kv,nvc->nkc", body_model.J_regressor_extra, out.vertices)
    joints54 = torch.cat([out.joints, extra], dim=1)
    rest = torch.einsum("jv,nvc->njc", body_model.smpl.J_regressor,
                        body_model.smpl.v_template + torch.einsum(
                            "nb,vcb->nvc", betas, body_model.smpl.shapedirs))
    return out.vertices, out.joints[:, :24], joints54[:, list(JOINT49_FROM_54)], rest


CASES = [(1, 0, 0.3), (1, 1, 3.0), (2, 2, 1.0), (8, 3, 0.5), (8, 4, 3.0), (16, 5, 1.5)]


@pytest.fixture(scope="module")
def smplx64(body_model):
    """smplx's forward in float64 on the same data: the exact result, to float32 rounding of
    the data (smplx in float32 is itself up to ~9e-7 m off it on large shapes)."""
    return copy.deepcopy(body_model).double()


@pytest.mark.parametrize("n,seed,scale", CASES)
def test_forward_equals_smplx(body_model, smplx64, n, seed, scale):
    rot, betas = _inputs(n, seed, scale, beta_scale=1.0)       # PARE's betas: ~N(0, 1)
    vertices, joints, joints49, rest = _smplx(body_model, rot, betas)
    out = body_model(rot, betas)
    assert out.vertices.shape == (n, 6890, 3) and out.vertices.is_contiguous()
    for name, ref in (("vertices", vertices), ("joints", joints), ("joints49", joints49),
                      ("rest_joints", rest)):
        got = getattr(out, name)
        assert got.shape == ref.shape and got.dtype == torch.float32, name
        torch.testing.assert_close(got, ref, atol=ATOL, rtol=0, msg=name)
    # Large shapes too, against smplx in float64: 7e-7 m, where smplx-float32 is 9e-7 off.
    rot, betas = _inputs(n, seed, scale, beta_scale=2.0)
    out = body_model(rot, betas)
    reference = _smplx(smplx64, rot.double(), betas.double())
    for name, ref in zip(("vertices", "joints", "joints49", "rest_joints"), reference):
        torch.testing.assert_close(getattr(out, name).double(), ref, atol=7e-7, rtol=0, msg=name)
    # Not vacuous: the pose moved the mesh by decimetres, and mesh-free equals full exactly.
    assert (out.vertices - body_model(torch.eye(3).expand_as(rot), betas).vertices).abs().max() > 0.05
    free = body_model(rot, betas, vertices=False)
    assert free.vertices is None
    for name in ("joints", "joints49", "rest_joints"):
        torch.testing.assert_close(getattr(free, name), getattr(out, name), atol=0, rtol=0, msg=name)


def test_batch_items_are_independent_and_input_dtype_is_free(body_model):
    rot, betas = _inputs(5, 7, 1.0)
    out = body_model(rot, betas)
    for i in (0, 3):
        one = body_model(rot[i:i + 1].double(), betas[i:i + 1].double())
        torch.testing.assert_close(one.vertices[0], out.vertices[i], atol=ATOL, rtol=0)
        torch.testing.assert_close(one.joints49[0], out.joints49[i], atol=ATOL, rtol=0)
    assert body_model(rot[:0], betas[:0]).vertices.shape == (0, 6890, 3)


@pytest.mark.parametrize("indices", [np.arange(0, 6890, 4), np.array([6889, 0, 332, 332, 17])])
def test_vertex_subset_gives_the_same_rows(body_model, indices):
    rot, betas = _inputs(3, 8, 1.5)
    full = body_model(rot, betas)
    subset = body_model.vertex_subset(torch.as_tensor(indices))
    out = body_model(rot, betas, vertices=subset)
    assert out.vertices.shape == (3, len(indices), 3)
    # The same rows to float rounding (a 5-column GEMM may take another kernel: last bit).
    torch.testing.assert_close(out.vertices, full.vertices[:, torch.as_tensor(indices)], atol=3e-7, rtol=0)
    torch.testing.assert_close(out.joints49, full.joints49, atol=0, rtol=0)
    vertices, *_ = _smplx(body_model, rot, betas)
    torch.testing.assert_close(out.vertices, vertices[:, indices], atol=ATOL, rtol=0)
    # Follows the model like any module (a copy of the constants, not a view into them).
    assert body_model.vertex_subset(list(indices)).to("cpu").num_vertices == len(indices)


def test_gradients_match_smplx(body_model):
    """Training backpropagates through the forward (losses on joints49 and vertices)."""
    rot, betas = _inputs(2, 9, 0.8)
    weights = torch.randn(2, 49, 3, generator=torch.Generator().manual_seed(0))
    grads = []
    for ours in (True, False):
        r, b = rot.clone().requires_grad_(), betas.clone().requires_grad_()
        if ours:
            out = body_model(r, b)
            loss = (out.joints49 * weights).sum() + out.vertices.square().mean()
        else:
            vertices, _, joints49, _ = _smplx(body_model, r, b)
            loss = (joints49 * weights).sum() + vertices.square().mean()
        loss.backward()
        grads.append((r.grad, b.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("n, scale", [(1, 0.5), (8, 2.5), (3, 1.0)])
def test_cpu_skeleton_in_numpy_equals_the_torch_modules_and_smplx(body_model, n, scale):
    """On CPU tensors outside autograd the skeleton is posed with NumPy (host_joints.py);
    under autograd by the torch modules: both against smplx, and against each other."""
    rot, betas = _inputs(n, 21, scale)
    host = body_model(rot, betas)
    with torch.enable_grad():
        torch_path = body_model(rot.clone().requires_grad_(), betas)
    vertices, joints, joints49, rest = _smplx(body_model, rot, betas)
    for name, ref in (("vertices", vertices), ("joints", joints), ("joints49", joints49), ("rest_joints", rest)):
        torch.testing.assert_close(getattr(host, name), ref, atol=ATOL, rtol=0, msg=name)
        torch.testing.assert_close(getattr(torch_path, name).detach(), ref, atol=ATOL, rtol=0, msg=name)
        torch.testing.assert_close(getattr(host, name), getattr(torch_path, name).detach(), atol=ATOL, rtol=0)
    # BodyModel.skeleton: the same pose from host arrays (float64 inputs in the model's dtype).
    skeleton = body_model.skeleton(rot.double().numpy(), betas.double().numpy())
    for name, ref in (("joints", joints), ("joints49", joints49), ("rest_joints", rest)):
        got = getattr(skeleton, name)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32, name
        torch.testing.assert_close(torch.from_numpy(np.ascontiguousarray(got)), ref, atol=ATOL, rtol=0, msg=name)
        np.testing.assert_array_equal(got, getattr(host, name).numpy())


def test_forward_kinematics_any_joint_order():
    """Pointer jumping does not rely on SMPL's parents-before-children numbering."""
    perm = np.random.default_rng(3).permutation(24)
    inv = np.argsort(perm)
    parents = [int(inv[SMPL_PARENTS[j]]) if SMPL_PARENTS[j] >= 0 else -1 for j in perm]
    rot, _ = _inputs(2, 10, 1.0)
    offsets = torch.randn(2, 24, 3, generator=torch.Generator().manual_seed(1))
    base = ForwardKinematics(SMPL_PARENTS)(rot, offsets)
    shuffled = ForwardKinematics(parents)(rot[:, perm], offsets[:, perm])
    torch.testing.assert_close(shuffled, base[:, perm], atol=1e-6, rtol=0)
    # A chain deeper than SMPL's (depth 30: 5 jumping steps) against the sequential product.
    chain = [-1] + list(range(30))
    rot, _ = _inputs(1, 11, 0.5)
    rot = torch.cat([rot, rot[:, :7]], dim=1)
    world = ForwardKinematics(chain)(rot, torch.ones(1, 31, 3))
    expected = torch.eye(4)
    for j in range(31):
        local = torch.eye(4)
        local[:3, :3], local[:3, 3] = rot[0, j], 1.0
        expected = expected @ local
        torch.testing.assert_close(world[0, j], expected, atol=1e-5, rtol=0)


def test_double_precision_model_and_deepcopy(smplx64):
    """``.double()`` (of a deep copy) runs the whole forward in float64."""
    model64 = smplx64
    rot, betas = _inputs(2, 12, 1.0)
    out = model64(rot, betas)
    assert out.vertices.dtype == torch.float64 and out.joints49.dtype == torch.float64
    ref = _smplx(model64, rot.double(), betas.double())
    torch.testing.assert_close(out.vertices, ref[0], atol=1e-7, rtol=0)  # constants stored in float32
    torch.testing.assert_close(out.joints49, ref[2], atol=1e-7, rtol=0)
