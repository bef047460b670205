"""pare_training.losses / step: loss terms, weights, and that optimisation steps lower the loss."""
import math

import numpy as np
import pytest
import torch

from pare_training import losses as L


def test_keypoint_2d_loss_weights_and_conf():
    gt = torch.zeros(1, 49, 3)
    gt[:, :, 2] = 1.0
    pred = torch.zeros(1, 49, 2)
    pred[0, 3] = torch.tensor([1.0, 1.0])       # an OpenPose joint: weight 0 by default
    assert L.keypoint_2d_loss(pred, gt, 0.0, 1.0).item() == 0.0
    pred[0, 30] = torch.tensor([0.2, 0.0])      # a GT joint: 0.04 / (49·2) coordinates
    assert L.keypoint_2d_loss(pred, gt, 0.0, 1.0).item() == pytest.approx(0.04 / 98)
    gt[0, 30, 2] = 0.5
    assert L.keypoint_2d_loss(pred, gt, 0.0, 1.0).item() == pytest.approx(0.02 / 98)
    assert L.keypoint_2d_loss(pred, gt, 1.0, 1.0).item() == pytest.approx((0.02 + 2) / 98)


def test_keypoint_3d_loss_is_pelvis_centred_and_masked():
    torch.manual_seed(0)
    gt = torch.cat([torch.randn(2, 49, 3), torch.ones(2, 49, 1)], -1)
    shifted = gt[:, :, :3] + torch.tensor([0.3, -1.0, 2.0])
    assert L.keypoint_3d_loss(shifted, gt, torch.ones(2)).item() == pytest.approx(0, abs=1e-10)
    pred = shifted.clone()
    pred[0, 40] += 1.0           # one GT joint, 1 m off in x, y, z (not a hip: centre unchanged)
    # only sample 0 counts: 3 / (1·24·3)
    assert L.keypoint_3d_loss(pred, gt, torch.tensor([1.0, 0.0])).item() == pytest.approx(3 / 72)
    assert L.keypoint_3d_loss(pred, gt, torch.tensor([0.0, 1.0])).item() == pytest.approx(0, abs=1e-10)
    pred[0, 5] += 100.0          # OpenPose joints are not in the 3D term
    assert L.keypoint_3d_loss(pred, gt, torch.tensor([0.0, 1.0])).item() == pytest.approx(0, abs=1e-10)
    assert L.keypoint_3d_loss(pred, gt, torch.zeros(2)).item() == 0.0


def test_smpl_camera_and_segm_terms():
    eye = torch.eye(3).expand(2, 24, 3, 3)
    pred = eye.clone()
    pred[1, 5, 0, 0] = 3.0       # sample 1 only
    pose, betas = L.smpl_losses(pred, torch.ones(2, 10), eye, torch.zeros(2, 10), torch.tensor([1.0, 0.0]))
    assert pose.item() == 0.0 and betas.item() == pytest.approx(1.0)
    pose, _ = L.smpl_losses(pred, torch.ones(2, 10), eye, torch.zeros(2, 10), torch.tensor([0.0, 1.0]))
    assert pose.item() == pytest.approx(4.0 / (24 * 9))
    assert L.camera_loss(torch.zeros(3, 3)).item() == pytest.approx(1.0)
    assert L.camera_loss(torch.tensor([[0.1, 0, 0]])).item() == pytest.approx(math.exp(-2))
    # segmentation: constant logits → CE = −log softmax of the labelled class, everywhere
    logits = torch.zeros(2, 25, 4, 4)
    logits[:, 7] = 2.0
    labels = torch.full((2, 16, 16), 7, dtype=torch.long)
    expected = -torch.log_softmax(torch.tensor([0.0] * 7 + [2.0] + [0.0] * 17), 0)[7]
    got = L.part_segm_loss(logits, labels, torch.ones(2))
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    # align_corners=True, checked against a separable numpy upsampling (src = i·(in−1)/(out−1))
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 25, 4, 4, generator=g) * 3
    labels = torch.randint(0, 25, (1, 16, 16), generator=g)
    src = np.arange(16) * 3 / 15
    lg = logits[0].numpy()
    rows = np.stack([[np.interp(src, np.arange(4), lg[c, :, x]) for x in range(4)]
                     for c in range(25)])                                  # [25,4(x),16(y)]
    up = np.stack([[np.interp(src, np.arange(4), rows[c, :, y]) for y in range(16)]
                   for c in range(25)])                                    # [25,16(y),16(x)]
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(up)[None].float(), labels)
    assert L.part_segm_loss(logits, labels, torch.ones(1)).item() == pytest.approx(ref.item(), rel=1e-5)
    assert L.part_segm_loss(logits, labels, torch.zeros(1)).item() == 0.0


def test_projection_matches_weak_perspective():
    s, tx, ty = 0.8, 0.1, -0.05
    cam_t = torch.tensor([[tx, ty, 2 * 5000 / (224 * s)]])
    pts = torch.tensor([[[0.2, -0.3, 0.0], [0.0, 0.5, 0.0]]])
    proj = L.perspective_projection(pts, cam_t)
    expected = s * (pts[..., :2] + torch.tensor([tx, ty]))
    torch.testing.assert_close(proj, expected, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from pare_ros.body_model import BodyModel, write_synthetic_model_dir
    from pare_ros.network import PARE
    d = write_synthetic_model_dir(tmp_path_factory.mktemp("model"), genders=("neutral",))
    body = BodyModel.from_dir(d)
    torch.manual_seed(0)
    model = PARE()
    # Start the weak-perspective scale near the SPIN mean camera (0.9): with the released
    # head's zero init, s ≈ 0 puts the body thousands of metres away and the 2D term is flat.
    with torch.no_grad():
        model.head.cam_mlp.bias[0] = 0.9
    return body, model


def _batch(body):
    from pare_ros.geometry import axis_angle_to_rotmat
    g = torch.Generator().manual_seed(1)
    pose = torch.randn(2, 72, generator=g) * 0.2
    betas = torch.randn(2, 10, generator=g) * 0.5
    rot = axis_angle_to_rotmat(pose.reshape(2, 24, 3))
    out = body(rot, betas)
    cam_t = torch.tensor([[0.0, 0.1, 2 * 5000 / (224 * 0.9)]]).expand(2, 3)
    kp2d = L.perspective_projection(out.joints49, cam_t)
    ones = torch.ones(2, 49, 1)
    return {"img": torch.randn(2, 3, 224, 224, generator=g),
            "keypoints": torch.cat([kp2d, ones], -1), "pose_3d": torch.cat([out.joints49, ones], -1),
            "has_pose_3d": torch.ones(2), "pose": pose, "pose_rotmat": rot, "betas": betas,
            "has_smpl": torch.tensor([1.0, 1.0]),
            "part_labels": torch.randint(0, 25, (2, 224, 224), generator=g)}


def test_total_is_the_weighted_sum(setup):
    body, model = setup
    batch = _batch(body)
    model.eval()
    with torch.no_grad():
        pred = model(batch["img"])
    total, t = L.PARELoss(body)(pred, batch)
    expected = 60 * (5 * (t["keypoints_2d"] + t["keypoints_3d"]) + t["pose"] + 0.001 * t["betas"]
                     + t["cam"] + t["part_segm"])
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert all(torch.isfinite(v) and v >= 0 for v in t.values())
    # without part labels (or with weight 0) the part term is absent
    no_segm = {k: v for k, v in batch.items() if k != "part_labels"}
    assert "part_segm" not in L.PARELoss(body)(pred, no_segm)[1]
    # GT pose through the body model gives zero pose/3D terms
    perfect = dict(pred, pred_pose=batch["pose_rotmat"], pred_shape=batch["betas"])
    t2 = L.PARELoss(body)(perfect, batch)[1]
    assert t2["pose"] < 1e-10 and t2["keypoints_3d"] < 1e-10 and t2["betas"] < 1e-10


def test_optimisation_steps_lower_the_loss(setup):
    from pare_training.step import make_optimizer, train_step
    body, model = setup
    batch = _batch(body)
    loss_fn = L.PARELoss(body)
    opt = make_optimizer(model, lr=1e-4)
    totals = [train_step(model, loss_fn, opt, batch)["total"] for _ in range(3)]
    assert np.isfinite(totals).all()
    assert totals[-1] < totals[0], totals
