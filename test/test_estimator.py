"""Image → bodies on the synthetic SMPL-format model: geometry, batching and visibility."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_ros.camera import Intrinsics
from pare_ros.estimator import BodyEstimator, rebuild_bodies
from pare_ros.network import PARE
from pare_ros.scenes.bodies import bodies_in_camera, person_off_axis
from pare_ros.scenes.metrics import estimate_errors
from pare_ros.scenes.perfect_pare import PerfectPare
from pare_ros.scenes.types import SceneCamera
from pare_ros.visibility import part_visibility


class FixedBackend:
    """A stand-in network with chosen outputs, to test the geometry after the network."""

    def __init__(self, rotmats, betas, cams, segm=None):
        self.out = {"pred_pose": rotmats, "pred_shape": betas, "pred_cam": cams,
                    "pred_segm_mask": segm if segm is not None else torch.zeros(len(cams), 25, 56, 56)}
        self.calls = []

    def __call__(self, batch):
        self.calls.append(batch.shape)
        n = batch.shape[0]
        return {k: v[:n] for k, v in self.out.items()}


def _random_people(n, seed=0):
    rng = np.random.default_rng(seed)
    rots = Rotation.from_rotvec(rng.normal(0, 0.3, (n * 24, 3))).as_matrix().reshape(n, 24, 3, 3)
    rots[:, 0] = Rotation.from_rotvec([np.pi, 0, 0]).as_matrix()   # upright in the optical frame
    betas = rng.normal(0, 1, (n, 10))
    cams = np.c_[rng.uniform(0.7, 1.1, n), rng.normal(0, 0.1, (n, 2))]
    return (torch.tensor(rots, dtype=torch.float32), torch.tensor(betas, dtype=torch.float32),
            torch.tensor(cams, dtype=torch.float32))


def test_3d_joints_project_onto_2d_keypoints(body_model):
    """Property: 3D outputs projected with the intrinsics land on the reported 2D keypoints."""
    rots, betas, cams = _random_people(3)
    estimator = BodyEstimator(FixedBackend(rots, betas, cams), body_model)
    image = np.zeros((480, 640, 3), np.uint8)
    k = Intrinsics(fx=520.0, fy=540.0, cx=300.0, cy=250.0)
    boxes = np.array([[40, 60, 200, 460], [300, 100, 420, 380], [500, 20, 630, 300]])
    result = estimator.estimate(image, boxes, k)
    assert len(result.bodies) == 3
    for body in result.bodies:
        for points3d, points2d in ((body.joints3d, body.joints2d), (body.keypoints3d, body.keypoints2d)):
            z = points3d[:, 2]
            assert (z > 0).all()
            u = k.fx * points3d[:, 0] / z + k.cx
            v = k.fy * points3d[:, 1] / z + k.cy
            np.testing.assert_allclose(np.c_[u, v], points2d, atol=1e-3)


def test_perfect_network_gives_the_true_bodies(body_model):
    """Ground truth: three people of known pose, shape and place (one on the axis, two off it)
    in a camera with an off-centre principal point and fx ≠ fy; with a perfect-PARE stand-in the
    estimator returns their camera-frame bodies (joints to a few cm, 2D to a few pixels)."""
    camera = SceneCamera(Intrinsics(fx=610.0, fy=580.0, cx=300.0, cy=260.0), 640, 480)
    rng = np.random.default_rng(2)
    people = [person_off_axis(a, d, direction, yaw, body_pose=rng.normal(0, 0.1, (23, 3)),
                              betas=rng.normal(0, 1, 10), person_id=i)
              for i, (a, d, direction, yaw) in enumerate([(0, 4.0, 0, 20), (18, 3.0, 200, -30), (25, 5.0, 20, 0)])]
    truth = bodies_in_camera(body_model, people, camera)
    backend = PerfectPare(truth, camera)
    bodies = BodyEstimator(backend, body_model).estimate(
        np.zeros((480, 640, 3), np.uint8), backend.boxes, camera.intrinsics).bodies
    for body, true in zip(bodies, truth):
        errors = estimate_errors(body, true)
        assert errors.orientation_deg < 1.0 and errors.root_m < 0.04 and errors.mpjpe_mm < 40
        assert np.abs(body.joints2d - camera.project(true.joints)).max() < 6.0
        np.testing.assert_allclose(body.betas, true.betas, atol=1e-5)


def test_batched_equals_one_person_at_a_time(body_model):
    torch.manual_seed(0)
    network = PARE().eval()
    estimator = BodyEstimator(network, body_model)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 150, 290], [200, 50, 390, 250], [120, 100, 260, 200]])
    together = estimator.estimate(image, boxes).bodies
    for i, box in enumerate(boxes):
        alone = estimator.estimate(image, box[None]).bodies[0]
        np.testing.assert_allclose(alone.rotmats, together[i].rotmats, atol=1e-5)
        np.testing.assert_allclose(alone.vertices, together[i].vertices, atol=1e-4)
        np.testing.assert_allclose(alone.part_visibility, together[i].part_visibility, atol=1e-5)


def test_output_shapes_and_rotation_forms(body_model):
    """Joint rotations are PARE's; the root is PARE's crop-frame root turned onto the ray through
    the crop centre (known answer for the identity crop rotation: the ray itself)."""
    rots, betas, cams = _random_people(2, seed=3)
    rots[1, 0] = torch.eye(3)
    k = Intrinsics(100.0, 100.0, 50.0, 50.0)
    result = BodyEstimator(FixedBackend(rots, betas, cams), body_model).estimate(
        np.zeros((100, 100, 3), np.uint8), [[0, 0, 50, 100], [50, 0, 100, 100]], k)
    b = result.bodies[1]
    assert b.rotmats.shape == (24, 3, 3) and b.axis_angle.shape == (24, 3)
    np.testing.assert_allclose(Rotation.from_rotvec(b.axis_angle).as_matrix(), b.rotmats, atol=1e-5)
    np.testing.assert_allclose(b.rotmats[1:], rots[1, 1:].numpy(), atol=1e-6)
    ray = np.array([(75 - 50) / 100, 0.0, 1.0])            # crop centre (75, 50)
    np.testing.assert_allclose(b.rotmats[0] @ [0, 0, 1], ray / np.linalg.norm(ray), atol=1e-6)
    assert b.joints3d.shape == (24, 3) and b.keypoints3d.shape == (49, 3)
    assert b.joints2d.shape == (24, 2) and b.keypoints2d.shape == (49, 2)
    assert b.vertices.shape == (6890, 3) and b.part_attention.shape == (24, 56, 56)
    assert b.part_visibility.shape == (24,)
    np.testing.assert_allclose(b.part_attention.reshape(24, -1).sum(1), 1.0, atol=1e-5)
    assert result.timings["total"] >= result.timings["network"] > 0


def test_no_people_gives_empty_result(body_model):
    backend = FixedBackend(*_random_people(1))
    result = BodyEstimator(backend, body_model).estimate(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 4)))
    assert result.bodies == [] and backend.calls == []


def test_visibility_high_when_attention_sits_on_the_part():
    logits = torch.full((1, 25, 56, 56), -5.0)
    logits[0, 0] = 2.0                                   # background everywhere ...
    logits[0, 1 + 3, 10:20, 10:20] = 12.0                # ... except part 3's own region
    logits[0, 1 + 7] = -1.0                              # part 7: flat, attends everywhere
    vis = part_visibility(logits)[0]
    assert vis[3] > 0.95
    assert vis[7] < 0.1
    assert ((vis >= 0) & (vis <= 1)).all()


def test_visibility_drops_when_attention_leaves_the_part():
    logits = torch.full((1, 25, 56, 56), -5.0)
    logits[0, 0] = 2.0
    logits[0, 1 + 5, 30:40, 30:40] = 12.0                # segmented + attended region of part 5
    visible = part_visibility(logits)[0, 5]
    # Occluded: part 5's logit map now peaks over part 9's pixels (attention moved elsewhere).
    logits[0, 1 + 5, 30:40, 30:40] = -5.0
    logits[0, 1 + 9, 5:15, 5:15] = 14.0
    logits[0, 1 + 5, 5:15, 5:15] = 12.0
    occluded = part_visibility(logits)[0, 5]
    assert visible > 0.9 and occluded < 0.2


def _one_part_logits(side, margin, offset=0.0):
    """Part 3 wins the segmentation by ``margin`` logits over background on a side×side square;
    ``offset`` is added to part 3's channel everywhere."""
    logits = torch.zeros(1, 25, 56, 56)
    logits[0, 0] = 2.0
    logits[0, 1 + 3] = offset
    logits[0, 1 + 3, :side, :side] = 2.0 + margin + offset
    return logits


def test_visibility_known_biases():
    """docs/visibility.md: the score is the soft product Σ A·P (known value on a constructed
    map), rises with a per-channel offset that leaves the attention unchanged, and is lower for
    a small part than for a large one at the same margin."""
    logits = _one_part_logits(16, 5.0)
    n_in, rest = 256, 56 * 56 - 256
    attention_in = n_in * math.exp(7.0) / (n_in * math.exp(7.0) + rest)      # A on the square
    p_in = math.exp(7.0) / (math.exp(7.0) + math.exp(2.0) + 23)               # P inside
    p_out = 1.0 / (1.0 + math.exp(2.0) + 23)                                   # P outside
    expected = attention_in * p_in + (1 - attention_in) * p_out
    assert part_visibility(logits)[0, 3].item() == pytest.approx(expected, rel=1e-5)
    by_offset = [part_visibility(_one_part_logits(16, 5.0, c))[0, 3].item() for c in (-2, -1, 0, 1, 2)]
    assert by_offset == sorted(by_offset) and by_offset[-1] - by_offset[0] > 0.15
    att = [_one_part_logits(16, 5.0, c)[:, 4].flatten(1).softmax(-1) for c in (-2, 2)]
    torch.testing.assert_close(att[0], att[1])                                # attention unchanged
    small, large = (part_visibility(_one_part_logits(s, 5.0))[0, 3].item() for s in (4, 32))
    assert small < large - 0.1


def test_rebuild_bodies_recomputes_consistent_geometry(body_model):
    """Smoothed parameters go back through SMPL: the same (camera-frame) parameters give the
    estimator's body (which turned PARE's crop-frame body onto its ray without re-running SMPL);
    a moved translation moves every 3D point and keeps 2D = projection of 3D."""
    rots, betas, cams = _random_people(2, seed=5)
    k = Intrinsics(500.0, 500.0, 320.0, 240.0)
    bodies = BodyEstimator(FixedBackend(rots, betas, cams), body_model).estimate(
        np.zeros((480, 640, 3), np.uint8), [[10, 10, 200, 400], [300, 20, 500, 460]], k).bodies
    same = rebuild_bodies(body_model, bodies, np.stack([b.rotmats for b in bodies]),
                          np.stack([b.betas for b in bodies]), np.stack([b.transl for b in bodies]), k)
    for a, b in zip(same, bodies):
        np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-5)
        np.testing.assert_allclose(a.joints2d, b.joints2d, atol=1e-3)
    shift = np.array([0.1, -0.2, 0.5], np.float32)
    moved = rebuild_bodies(body_model, bodies, np.stack([b.rotmats for b in bodies]),
                           np.stack([b.betas for b in bodies]),
                           np.stack([b.transl for b in bodies]) + shift, k)
    for a, b in zip(moved, bodies):
        np.testing.assert_allclose(a.joints3d - b.joints3d, np.broadcast_to(shift, (24, 3)), atol=1e-5)
        z = a.joints3d[:, 2]
        np.testing.assert_allclose(a.joints2d[:, 0], 500 * a.joints3d[:, 0] / z + 320, atol=1e-3)
        assert a.box is b.box and a.part_visibility is b.part_visibility


def test_parameters_only_estimate_poses_back_to_the_full_one(body_model):
    """``estimate(points=False)`` (what the node asks for before smoothing) gives the same
    parameters and no point fields; posing those parameters gives the full estimate's bodies."""
    rots, betas, cams = _random_people(3, seed=11)
    k = Intrinsics(600.0, 610.0, 330.0, 250.0)
    image, boxes = np.zeros((480, 640, 3), np.uint8), [[10, 10, 200, 400], [300, 20, 500, 460], [520, 100, 630, 380]]
    estimator = BodyEstimator(FixedBackend(rots, betas, cams), body_model)
    full = estimator.estimate(image, boxes, k).bodies
    bare = estimator.estimate(image, boxes, k, vertices=True, points=False).bodies
    for a, b in zip(bare, full):
        assert a.joints3d is a.keypoints3d is a.joints2d is a.keypoints2d is a.axis_angle is a.vertices is None
        for name in ("rotmats", "betas", "transl", "rest_joints", "part_visibility", "cam_crop"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    posed = rebuild_bodies(body_model, bare, np.stack([b.rotmats for b in bare]), np.stack([b.betas for b in bare]),
                           np.stack([b.transl for b in bare]), k)
    for a, b in zip(posed, full):
        for name in ("joints3d", "keypoints3d", "vertices", "axis_angle"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=2e-6)
        np.testing.assert_allclose(a.joints2d, b.joints2d, atol=1e-3)


def test_host_tensor_of_a_read_only_frame_shares_it_without_a_warning():
    import warnings

    from pare_ros.estimator import _host_tensor

    frame = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    frame.flags.writeable = False                  # as the frame pipeline decodes an rgb8 message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = _host_tensor(frame)
    assert tensor.data_ptr() == frame.ctypes.data and torch.equal(tensor, torch.from_numpy(frame.copy()))
