"""The host-side fast paths of the frame pipeline against their plain references: look-up-table
crop normalisation, the zero-cost benchmark network, and (CUDA only) SMPL and crops on the GPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pare_ros.backends import select
from pare_ros.backends.contract import OUTPUT_SHAPES
from pare_ros.benchmarking.null_network import NullNetwork
from pare_ros.preprocessing import (IMAGENET_MEAN, IMAGENET_STD, box_to_crop, crop_image, crops_to_input,
                                    normalize_crops)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
RNG = np.random.default_rng(3)
IMAGE = RNG.integers(0, 256, (240, 320, 3), dtype=np.uint8)
CROPS = [box_to_crop(b) for b in ([10, 20, 120, 230], [200, -40, 380, 260], [0, 0, 320, 240])]


def formula(crops_rgb: np.ndarray) -> np.ndarray:
    """The normalisation as written in the reference: (x/255 − mean)/std, then NCHW."""
    x = crops_rgb.astype(np.float32) / 255.0
    return ((x - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2)


def test_lookup_normalisation_is_bit_identical_to_the_formula():
    crops = RNG.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    crops[0, :2, :2] = [[0, 255, 128], [1, 254, 7]]                  # the extremes, too
    ours = normalize_crops(crops)
    assert ours.dtype == torch.float32 and ours.shape == (3, 3, 224, 224) and ours.is_contiguous()
    np.testing.assert_array_equal(ours.numpy(), formula(crops))
    np.testing.assert_allclose(normalize_crops(crops.astype(np.float32)).numpy(), formula(crops), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"\[N,H,W,3\]"):
        normalize_crops(crops[0])


def test_crops_to_input_equals_one_warp_per_person_then_normalise():
    ours = crops_to_input(IMAGE, CROPS)
    reference = formula(np.stack([crop_image(IMAGE, c) for c in CROPS]))
    np.testing.assert_array_equal(ours.numpy(), reference)
    assert crops_to_input(IMAGE, []).shape == (0, 3, 224, 224)


def test_null_network_honours_the_contract_with_fixed_outputs():
    net = NullNetwork(max_batch=2)
    a = net(torch.zeros(2, 3, 224, 224))
    b = net(torch.zeros(5, 3, 224, 224))                              # grows on demand
    for name, shape in OUTPUT_SHAPES.items():
        assert a[name].shape == (2, *shape) and b[name].shape == (5, *shape), name
        assert a[name].dtype == torch.float32
    again = net(torch.ones(2, 3, 224, 224))                           # the images do not matter
    zeros = net(torch.zeros(2, 3, 224, 224))
    for name in OUTPUT_SHAPES:
        torch.testing.assert_close(again[name], zeros[name], rtol=0, atol=0)
    rot = a["pred_pose"].double()
    eye = torch.eye(3, dtype=torch.float64).expand_as(rot)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye, atol=1e-5, rtol=0)   # rotations
    assert net.calls == 4


def test_null_network_is_not_a_node_backend():
    assert not any("null" in kind for kind in select.KINDS)
    with pytest.raises(Exception):
        select.select_backend("null")


@cuda
def test_cuda_joints_only_smpl_and_null_network_match_cpu():
    from pare_ros.assets import synthetic_smpl_dir
    from pare_ros.body_model import BodyModel
    from pare_ros.geometry import axis_angle_to_rotmat

    cpu = BodyModel.from_dir(synthetic_smpl_dir("neutral"))
    gpu = BodyModel.from_dir(synthetic_smpl_dir("neutral")).cuda()
    g = torch.Generator().manual_seed(1)
    rot = axis_angle_to_rotmat(torch.randn(4 * 24, 3, generator=g)).reshape(4, 24, 3, 3)
    betas = torch.randn(4, 10, generator=g)
    ref = cpu(rot, betas)
    fast = gpu(rot.cuda(), betas.cuda(), vertices=False)
    for name in ("joints", "joints49", "rest_joints"):
        torch.testing.assert_close(getattr(fast, name).cpu(), getattr(ref, name), atol=2e-6, rtol=0)
    out = NullNetwork(device="cuda")(torch.zeros(3, 3, 224, 224, device="cuda"))
    assert all(v.is_cuda for v in out.values())


@cuda
def test_cuda_batched_crops_match_the_cpu_input_to_one_grey_level():
    from pare_ros.backends.gpu_preprocess import crop_batch

    gpu = crop_batch(torch.from_numpy(IMAGE).cuda(), CROPS).cpu()
    step = float(1.0 / (255.0 * IMAGENET_STD.min())) + 1e-5          # one grey level, normalised
    assert (gpu - crops_to_input(IMAGE, CROPS)).abs().max() <= step
