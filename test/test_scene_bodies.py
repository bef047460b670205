"""Ground-truth scene bodies, the perfect-PARE stand-in and the camera-frame metrics, checked
against known answers (anatomy of a placed body, SMPL itself, closed-form cameras)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_ros.camera import Intrinsics
from pare_ros.preprocessing import box_to_crop
from pare_ros.scenes.bodies import bodies_in_camera, facing_camera, person_off_axis
from pare_ros.scenes.metrics import body_errors, rotation_error_deg
from pare_ros.scenes.perfect_pare import PerfectPare, fit_crop, view_rotation
from pare_ros.scenes.types import CameraPose, PersonState, SceneCamera, yaw_orientation

CAMERA = SceneCamera(Intrinsics(600.0, 580.0, 330.0, 250.0), 640, 480)


def test_body_is_where_and_how_it_was_placed(body_model):
    """Pelvis at the requested point; upright (head above the feet in the image), facing the
    camera (its left hip on the image right), turned by the yaw (left hip further away)."""
    rng = np.random.default_rng(0)
    people = [person_off_axis(20, 3.0, 30, 0, betas=rng.normal(0, 1, 10)),
              person_off_axis(0, 4.0, 0, 90, person_id=1)]
    front, turned = bodies_in_camera(body_model, people, CAMERA)
    np.testing.assert_allclose(front.root, people[0].root, atol=1e-6)
    assert math.degrees(math.acos(front.root[2] / np.linalg.norm(front.root))) == pytest.approx(20)
    head, foot, l_hip, r_hip = 15, 7, 1, 2
    uv = CAMERA.project(front.joints)
    assert uv[head, 1] < uv[0, 1] < uv[foot, 1]
    assert uv[l_hip, 0] > uv[r_hip, 0]
    assert turned.joints[l_hip, 2] > turned.joints[0, 2] + 0.05 > turned.joints[r_hip, 2] + 0.1
    # SMPL itself with the stored parameters gives the stored joints (smplx transl convention).
    smpl = body_model(torch.tensor(front.rotmats[None], dtype=torch.float32),
                      torch.tensor(front.betas[None], dtype=torch.float32))
    np.testing.assert_allclose(smpl.joints[0].numpy() + front.transl, front.joints, atol=1e-5)
    np.testing.assert_allclose(smpl.vertices[0].numpy() + front.transl, front.vertices, atol=1e-5)


def test_world_scene_matches_camera_conventions(body_model):
    """REP-103 world: a person 3 m in front of a level camera facing it is the camera-frame
    person facing the camera, pelvis on the optical axis."""
    pose = CameraPose.looking([0.0, 0.0, 1.0])
    person = PersonState(0, np.array([3.0, 0.0, 1.0]), yaw_orientation(math.pi))
    body = bodies_in_camera(body_model, [person], CAMERA, camera_pose=pose)[0]
    np.testing.assert_allclose(body.root, [0.0, 0.0, 3.0], atol=1e-9)
    np.testing.assert_allclose(body.orientation, facing_camera(0.0), atol=1e-12)


def test_box_is_the_projected_mesh(body_model):
    """On the axis at 6 m, the box height is fy · (body height) / distance to about 2 %."""
    body = bodies_in_camera(body_model, [person_off_axis(0, 6.0)], CAMERA)[0]
    height = np.ptp(body.local_vertices[:, 1])
    assert body.box[3] - body.box[1] == pytest.approx(580.0 * height / 6.0, rel=0.02)
    uv = CAMERA.project(body.vertices)
    assert (uv >= body.box[:2] - 1e-9).all() and (uv <= body.box[2:] + 1e-9).all()


def test_body_behind_the_camera_is_refused(body_model):
    with pytest.raises(ValueError, match="behind the camera"):
        bodies_in_camera(body_model, [person_off_axis(0, 0.2)], CAMERA)


def test_perfect_pare_on_the_axis_has_the_closed_form_camera(body_model):
    """A frontal body on the optical axis at 8 m: PARE's scale is the pixels per metre over the
    half side, s = fx·2/(Z·side) (fx = fy here), the orientation is the camera-frame one."""
    camera = SceneCamera(Intrinsics(600.0, 600.0, 320.0, 240.0), 640, 480)
    body = bodies_in_camera(body_model, [person_off_axis(0, 8.0)], camera)[0]
    crop = box_to_crop(body.box)
    fit = fit_crop(body, camera, crop)
    assert fit.cam[0] == pytest.approx(2 * 600.0 / (8.0 * crop.side), rel=0.01)
    assert fit.rms_crop_px < 0.5
    # Seen from the crop centre (the box centre, a little below the pelvis): turned by that
    # ray's angle from the axis.
    ray_angle = math.degrees(math.atan(math.hypot(crop.cx - 320.0, crop.cy - 240.0) / 600.0))
    assert rotation_error_deg(fit.root_rotation, body.orientation) == pytest.approx(ray_angle, abs=1e-3)


def test_perfect_pare_reports_the_view_from_the_crop_ray(body_model):
    body = bodies_in_camera(body_model, [person_off_axis(25, 3.0, 200, 30)], CAMERA)[0]
    crop = box_to_crop(body.box)
    fit = fit_crop(body, CAMERA, crop)
    view = view_rotation((crop.cx, crop.cy), CAMERA)
    np.testing.assert_allclose(view @ [0, 0, 1], CAMERA.ray(crop.cx, crop.cy), atol=1e-12)
    np.testing.assert_allclose(view @ fit.root_rotation, body.orientation, atol=1e-12)
    assert rotation_error_deg(fit.root_rotation, body.orientation) > 15


def test_perfect_pare_as_a_backend(body_model):
    people = [person_off_axis(10, 3.0, 0, 0), person_off_axis(15, 4.0, 180, 40, person_id=1)]
    truth = bodies_in_camera(body_model, people, CAMERA)
    backend = PerfectPare(truth, CAMERA, vertex_parts=body_model.vertex_parts)
    out = backend(torch.zeros(2, 3, 224, 224))
    assert out["pred_pose"].shape == (2, 24, 3, 3) and out["pred_shape"].shape == (2, 10)
    assert out["pred_cam"].shape == (2, 3) and out["pred_segm_mask"].shape == (2, 25, 56, 56)
    np.testing.assert_allclose(out["pred_pose"][:, 1:].numpy(), np.stack([t.rotmats[1:] for t in truth]), atol=1e-6)
    labels = out["pred_segm_mask"].argmax(1).numpy()
    # The pelvis joint's cell shows a body part; the crop corner shows background.
    xy = (CAMERA.project(truth[0].joints[0]) - (backend.fits[0].crop.cx, backend.fits[0].crop.cy)) \
        / backend.fits[0].crop.side * 56 + 28
    assert labels[0, int(xy[1]), int(xy[0])] > 0 and labels[0, 0, 0] == 0
    with pytest.raises(ValueError, match="pass PerfectPare.boxes"):
        backend(torch.zeros(3, 3, 224, 224))


def test_metrics_known_answers():
    r = Rotation.from_rotvec([0.0, 0.0, math.radians(12)]).as_matrix()
    assert rotation_error_deg(r, np.eye(3)) == pytest.approx(12.0)
    joints = np.random.default_rng(1).normal(size=(24, 3))
    e = body_errors(joints + [0.03, 0.0, 0.04], r, joints, np.eye(3))
    assert e.root_m == pytest.approx(0.05) and e.mpjpe_mm == pytest.approx(50.0)
    assert e.mpjpe_root_aligned_mm == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match=r"\[J,3\]"):
        body_errors(joints[:5], r, joints, r)
