"""Perspective-correct placement of PARE's crop-frame body (pare_ros.camera.crop_to_camera)
against ground-truth scenes: off-axis sweeps, off-centre principal points, fx ≠ fy, turned
bodies, with a perfect-PARE stand-in (docs/geometry.md)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_ros.camera import Intrinsics, crop_cam_to_translation, crop_to_camera, ray_rotation
from pare_ros.estimator import BodyEstimator
from pare_ros.scenes.bodies import bodies_in_camera, person_off_axis
from pare_ros.scenes.metrics import body_errors, estimate_errors
from pare_ros.scenes.perfect_pare import PerfectPare
from pare_ros.scenes.types import SceneCamera

# The camera, and one with an off-centre principal point and fx ≠ fy.
CAMERAS = [SceneCamera(Intrinsics(640.0, 640.0, 650.0, 350.0), 1280, 720),
           SceneCamera(Intrinsics(700.0, 655.0, 410.0, 300.0), 960, 640)]


def _scene(body_model, camera, angles, distance, directions=(0, 135, 270), yaws=(0, -50), seed=0):
    rng = np.random.default_rng(seed)
    people = [person_off_axis(a, distance, d, y, body_pose=rng.normal(0, 0.12, (23, 3)),
                              betas=rng.normal(0, 1, 10), person_id=i)
              for i, (a, d, y) in enumerate((a, d, y) for a in angles for d in directions for y in yaws)]
    return bodies_in_camera(body_model, people, camera)


def _estimate(body_model, camera, truth, refine=True, orientation="view"):
    backend = PerfectPare(truth, camera, orientation=orientation)
    image = np.zeros((camera.height, camera.width, 3), np.uint8)
    bodies = BodyEstimator(backend, body_model, refine_translation=refine).estimate(
        image, backend.boxes, camera.intrinsics).bodies
    return backend, bodies


# --------------------------------------------------------------------------------------------
# the ray rotation: known answers
# --------------------------------------------------------------------------------------------
def test_ray_rotation_known_answers():
    k = Intrinsics(600.0, 550.0, 310.0, 230.0)
    pixels = torch.tensor([[310.0, 230.0],                                  # principal point
                           [310.0 + 600.0 * math.tan(0.5), 230.0],           # 0.5 rad right
                           [310.0, 230.0 - 550.0 * math.tan(0.3)],           # 0.3 rad up
                           [50.0, 470.0]], dtype=torch.float64)
    r = ray_rotation(pixels, k).numpy()
    np.testing.assert_allclose(r[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(r[1], Rotation.from_rotvec([0, 0.5, 0]).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(r[2], Rotation.from_rotvec([0.3, 0, 0]).as_matrix(), atol=1e-12)
    # Diagonal: the optical axis goes onto the pixel's ray, about an axis in the image plane
    # (the smallest such rotation, as scipy's align_vectors builds it).
    ray = np.array([(50 - 310) / 600, (470 - 230) / 550, 1.0])
    ray /= np.linalg.norm(ray)
    np.testing.assert_allclose(r[3] @ [0, 0, 1], ray, atol=1e-12)
    np.testing.assert_allclose(r[3], Rotation.align_vectors([ray], [[0, 0, 1]])[0].as_matrix(), atol=1e-9)


def test_identity_crop_orientation_ends_on_the_crop_ray(body_model):
    """A stand-in reporting the identity orientation for off-axis crops: the camera-frame root
    rotation is the rotation onto each crop's ray."""
    for camera in CAMERAS:
        truth = _scene(body_model, camera, angles=(12, 30), distance=3.0, yaws=(0,))
        backend, bodies = _estimate(body_model, camera, truth, orientation="identity")
        for body, fit in zip(bodies, backend.fits):
            ray = camera.ray(fit.crop.cx, fit.crop.cy)
            expected = Rotation.align_vectors([ray], [[0, 0, 1]])[0].as_matrix()
            np.testing.assert_allclose(body.rotmats[0], expected, atol=1e-5)
            assert math.degrees(math.acos(ray[2])) > 8        # really off the axis


# --------------------------------------------------------------------------------------------
# acceptance: up to 30° off the axis at 2–5 m
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("camera", CAMERAS, ids=["issue-K", "offcentre-fx-ne-fy"])
def test_off_axis_sweep_meets_the_bounds(body_model, camera):
    for distance in (2.0, 5.0):
        truth = _scene(body_model, camera, angles=(0, 15, 30), distance=distance)
        _, bodies = _estimate(body_model, camera, truth)
        errors = [estimate_errors(b, t) for b, t in zip(bodies, truth)]
        assert max(e.orientation_deg for e in errors) <= 5.0
        assert max(e.root_m for e in errors) <= 0.05, [round(e.root_m, 3) for e in errors]


def test_former_pass_through_fails_the_same_scene(body_model):
    """The test can fail: the former conversion (crop orientation used as is, translation from
    crop_cam_to_translation) misses by about the off-axis angle on the same perfect inputs."""
    camera = CAMERAS[0]
    truth = _scene(body_model, camera, angles=(30,), distance=3.0, directions=(0, 90), yaws=(0,))
    backend = PerfectPare(truth, camera)
    out = backend.outputs
    smpl = body_model(out["pred_pose"], out["pred_shape"])
    centres = torch.tensor([[f.crop.cx, f.crop.cy] for f in backend.fits])
    sides = torch.tensor([f.crop.side for f in backend.fits])
    transl = crop_cam_to_translation(out["pred_cam"], centres, sides, camera.intrinsics)
    joints = (smpl.joints + transl[:, None]).detach().numpy()
    for j, r, t in zip(joints, out["pred_pose"][:, 0].numpy(), truth):
        e = body_errors(j, r, t.joints, t.orientation)
        assert e.orientation_deg > 20 and e.root_m > 0.05


def test_beyond_30_degrees_documented_figures(body_model):
    """docs/geometry.md: with the perfect stand-in the orientation stays exact and the root within
    about 0.3 cm out to 60° (the self-consistent camera step absorbs the weak-perspective misfit)."""
    camera = CAMERAS[0]
    for angle in (40, 50):
        truth = _scene(body_model, camera, angles=(angle,), distance=2.0, directions=(0, 180))
        _, bodies = _estimate(body_model, camera, truth)
        errors = [estimate_errors(b, t) for b, t in zip(bodies, truth)]
        assert max(e.orientation_deg for e in errors) < 0.1
        assert max(e.root_m for e in errors) <= 0.02


def test_stand_in_explaining_other_points_documented_bound(body_model):
    """docs/geometry.md, limits: when the network's camera explains other points than PARE's
    2D-supervised keypoints (here: the mesh, a silhouette fit), the root error is that
    ambiguity of a weak-perspective camera, measured up to ~11 cm at 2–5 m (not the ≤ 5 cm
    of the matching convention); orientation is unaffected."""
    camera = CAMERAS[0]
    truth = _scene(body_model, camera, angles=(0, 30), distance=3.0, directions=(0, 90))
    backend = PerfectPare(truth, camera, fit_points="vertices")
    bodies = BodyEstimator(backend, body_model).estimate(
        np.zeros((camera.height, camera.width, 3), np.uint8), backend.boxes, camera.intrinsics).bodies
    errors = [estimate_errors(b, t) for b, t in zip(bodies, truth)]
    assert max(e.orientation_deg for e in errors) < 0.1
    assert max(e.root_m for e in errors) <= 0.15


def test_refinement_lowers_the_root_error(body_model):
    camera = CAMERAS[1]
    truth = _scene(body_model, camera, angles=(20, 30), distance=3.5)
    plain = [estimate_errors(b, t).root_m for b, t in zip(_estimate(body_model, camera, truth, refine=False)[1], truth)]
    refined = [estimate_errors(b, t).root_m for b, t in zip(_estimate(body_model, camera, truth)[1], truth)]
    assert max(refined) < 0.5 * max(plain)


# --------------------------------------------------------------------------------------------
# the rigid turn equals SMPL re-run with the camera-frame root
# --------------------------------------------------------------------------------------------
def test_turning_the_crop_body_equals_smpl_with_the_camera_root(body_model):
    rng = np.random.default_rng(7)
    rots = torch.tensor(Rotation.from_rotvec(rng.normal(0, 0.4, (3 * 24, 3))).as_matrix().reshape(3, 24, 3, 3),
                        dtype=torch.float32)
    betas = torch.tensor(rng.normal(0, 1, (3, 10)), dtype=torch.float32)
    cam = torch.tensor([[0.9, 0.05, -0.1], [1.1, 0.0, 0.2], [0.7, -0.2, 0.1]])
    k = Intrinsics(500.0, 520.0, 330.0, 250.0)
    crop_body = body_model(rots, betas)
    placement = crop_to_camera(rots[:, 0], cam, torch.tensor([[100.0, 80.0], [330.0, 250.0], [600.0, 420.0]]),
                               torch.tensor([200.0, 300.0, 150.0]), k, crop_body.rest_joints[:, 0],
                               keypoints_crop=crop_body.joints49[:, 25:])
    camera_body = body_model(torch.cat((placement.global_orient[:, None], rots[:, 1:]), 1), betas)
    np.testing.assert_allclose(placement.apply(crop_body.vertices).numpy(),
                               (camera_body.vertices + placement.transl[:, None]).numpy(), atol=2e-5)
