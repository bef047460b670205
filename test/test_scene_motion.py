"""The motion-scene harness against answers computed by hand: trajectories, projected boxes,
occlusion, the detector model's statistics, the frame clock, and the tracking metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pare_ros.camera import Intrinsics
from pare_ros.scenes.motion import (DetectorModel, EstimateNoise, MotionScene, Path, Walker, flip_root,
                                    noisy_estimate, push_along_ray)
from pare_ros.scenes.track_metrics import confirmation_time, crossing_time, geodesic_deg, mot_summary
from pare_ros.scenes.types import CameraPose, SceneCamera

F, CX, CY = 500.0, 320.0, 240.0
CAM = SceneCamera(Intrinsics(F, F, CX, CY), 640, 480)
LEVEL = CameraPose.looking([0.0, 0.0, 1.0])                 # 1 m high, looking along +x, no tilt
EXACT = DetectorModel(box_noise=0.0, score_noise=0.0)


def standing(pid, x, y, yaw=math.pi, **kw):
    return Walker(pid, Path([x, y], yaw=yaw).stop(100.0), **kw)


def test_path_segments_give_known_positions_yaw_and_velocity():
    path = Path([0.0, 0.0], yaw=0.0).walk(2.0, 1.0).turn(math.pi / 2, 1.0).stop(1.0).walk(1.0, 0.5)
    np.testing.assert_allclose(path.at(1.0), (1.0, 0.0, 0.0, 1.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(path.at(2.5), (2.0, 0.0, math.pi / 4, 0.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(path.at(3.5), (2.0, 0.0, math.pi / 2, 0.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(path.at(4.5), (2.0, 0.25, math.pi / 2, 0.0, 0.5), atol=1e-12)
    np.testing.assert_allclose(path.at(99.0), (2.0, 0.5, math.pi / 2, 0.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(path.at(-1.0), (0.0, 0.0, 0.0, 0.0, 0.0), atol=1e-12)
    to = Path([0.0, 0.0], yaw=0.0).walk_to([3.0, 4.0], 2.5)            # 5 m in 2 s, facing it
    np.testing.assert_allclose(to.at(1.0), (1.5, 2.0, math.atan2(4, 3), 1.5, 2.0), atol=1e-12)


def test_box_of_a_person_is_the_projection_of_the_body_cylinder():
    """Facing the camera at 4 m: the cylinder's nearest ring points are at 3.85 m (depth 0.3),
    its sides at ±0.25 m at 4 m; head 1.75 m, feet 0 m, camera 1 m high."""
    scene = MotionScene([standing(1, 4.0, 0.0)], CAM, LEVEL)
    (f,) = scene.frames(1.0, 1.0, EXACT)
    expected = [CX - F * 0.25 / 4.0, CY - F * 0.75 / 3.85, CX + F * 0.25 / 4.0, CY + F * 1.0 / 3.85]
    np.testing.assert_allclose(f.gt_boxes[0], expected, atol=1e-6)
    np.testing.assert_allclose(f.visible_boxes[0], expected, atol=1e-6)
    np.testing.assert_allclose(f.det_boxes[0], expected, atol=1e-6)
    assert f.visible[0] == 1.0 and f.det_ids.tolist() == [1] and f.det_scores[0] == pytest.approx(0.85)
    # The camera frame state: 4 m ahead (optical z), 1 m - root height below the camera (y down).
    root = f.people_camera[0].root
    np.testing.assert_allclose(root, [0.0, 1.0 - 0.93, 4.0], atol=1e-12)
    # Facing the camera: the body's forward axis (SMPL z) points back at it (optical −z).
    np.testing.assert_allclose(f.people_camera[0].orientation[:, 2], [0, 0, -1], atol=1e-12)


def test_moving_camera_sees_a_static_person_grow():
    scene = MotionScene([standing(1, 4.0, 0.0)], CAM,
                        lambda t: CameraPose(LEVEL.rotation, LEVEL.translation + [t, 0, 0]))
    frames = scene.frames(1.0, 2.0, EXACT)                              # camera at x = 0, 1 m
    heights = [f.gt_boxes[0][3] - f.gt_boxes[0][1] for f in frames]
    assert heights[1] / heights[0] == pytest.approx(3.85 / 2.85, rel=1e-9)
    np.testing.assert_allclose(frames[1].people_camera[0].root[2], 3.0)
    np.testing.assert_allclose(frames[1].people[0].root[:2], [4.0, 0.0])     # world state unchanged


def test_occlusion_hides_shrinks_and_lowers_scores():
    # Directly behind a nearer person of the same size: hidden, not detected, still in the truth.
    scene = MotionScene([standing(1, 3.0, 0.0), standing(2, 6.0, 0.0)], CAM, LEVEL)
    (f,) = scene.frames(1.0, 1.0, EXACT)
    assert f.gt_ids == [1, 2] and f.visible[1] == 0.0 and f.det_ids.tolist() == [1]
    # The nearer person covers the left part of the farther one: right part visible, box cut at
    # the occluder's right edge, score between occluded_score and score.
    scene = MotionScene([standing(1, 3.0, 0.3), standing(2, 6.0, 0.0)], CAM, LEVEL)
    (f,) = scene.frames(1.0, 1.0, EXACT)
    near, far = f.gt_boxes
    assert 0.35 < f.visible[1] < 0.9
    assert f.visible_boxes[1][0] >= near[2] and f.visible_boxes[1][2] == pytest.approx(far[2])
    k = f.det_ids.tolist().index(2)
    assert 0.3 < f.det_scores[k] < 0.85
    np.testing.assert_allclose(f.det_boxes[k], f.visible_boxes[1])
    # Out of the image: not in the truth; behind the camera: neither.
    scene = MotionScene([standing(1, 4.0, 30.0), standing(2, -3.0, 0.0)], CAM, LEVEL)
    (f,) = scene.frames(1.0, 1.0, EXACT)
    assert f.gt_ids == [] and len(f.det_boxes) == 0


def test_detector_statistics_and_frame_clock():
    scene = MotionScene([standing(1, 4.0, 0.0)], CAM, LEVEL)
    det = DetectorModel(box_noise=0.04, miss_rate=0.2, false_positives=0.5, seed=3)
    frames = scene.frames(50.0, 20.0, det)
    assert len(frames) == 1000
    np.testing.assert_allclose([f.stamp for f in frames[:3]], [0.0, 0.02, 0.04])
    hits = [f for f in frames if 1 in f.det_ids.tolist()]
    assert len(hits) / len(frames) == pytest.approx(0.8, abs=0.04)          # 3σ of a binomial
    fps = sum(int((f.det_ids == -1).sum()) for f in frames)
    assert fps / len(frames) == pytest.approx(0.5, abs=0.07)
    truth = frames[0].gt_boxes[0]
    err = np.array([f.det_boxes[f.det_ids.tolist().index(1)] - truth for f in hits])
    assert err.std() / (truth[3] - truth[1]) == pytest.approx(0.04, rel=0.1)
    again = scene.frames(50.0, 20.0, det)
    assert all(np.array_equal(a.det_boxes, b.det_boxes) for a, b in zip(frames, again))
    shifted = scene.frames(10.0, 1.0, det, phase=0.5)
    assert shifted[0].stamp == pytest.approx(0.05) and len(shifted) == 10
    with pytest.raises(ValueError):
        scene.frames(0.0, 1.0)


def test_estimate_helpers():
    scene = MotionScene([standing(1, 4.0, 1.0, yaw=2.0)], CAM, LEVEL)
    (f,) = scene.frames(1.0, 1.0, EXACT)
    state = f.people_camera[0]
    rot, transl, betas = noisy_estimate(state, EstimateNoise(transl_std=(0, 0, 0), rot_std=0.0, betas_std=0.0),
                                        np.random.default_rng(0))
    np.testing.assert_allclose(rot[0], state.orientation, atol=1e-12)
    np.testing.assert_allclose(rot[1:], np.tile(np.eye(3), (23, 1, 1)), atol=1e-12)
    np.testing.assert_allclose(transl, state.root)
    assert geodesic_deg(flip_root(rot)[0], rot[0]) == pytest.approx(180.0)
    # The flip is about the body's own vertical axis: the head stays up.
    np.testing.assert_allclose(flip_root(rot)[0][:, 1], rot[0][:, 1], atol=1e-12)
    pushed = push_along_ray(transl, 1.5)
    assert np.linalg.norm(pushed) == pytest.approx(np.linalg.norm(transl) + 1.5)
    np.testing.assert_allclose(np.cross(pushed, transl), 0, atol=1e-12)


def test_tracking_metrics_on_known_answers():
    """Two people crossing; a perfect tracker, then one that swaps their ids half-way."""
    scene = MotionScene([Walker(1, Path([4.0, 1.5], yaw=-math.pi / 2).walk(3.0, 1.0)),
                         Walker(2, Path([4.0, -1.5], yaw=math.pi / 2).walk(3.0, 1.0))], CAM, LEVEL)
    # (same depth: they would collide, but the metrics only see boxes)
    frames = scene.frames(10.0, 1.0, EXACT)
    perfect = [[(pid, box) for pid, box in zip(f.gt_ids, f.visible_boxes)] for f in frames]
    row = mot_summary(frames, perfect)
    assert row["num_switches"] == 0 and row["mota"] == 1.0 and row["idf1"] == 1.0
    swapped = [[(3 - pid if k >= 5 else pid, box) for pid, box in pub] for k, pub in enumerate(perfect)]
    row = mot_summary(frames, swapped)
    assert row["num_switches"] == 2 and row["idf1"] == pytest.approx(0.5)
    late = [pub if k >= 3 else [] for k, pub in enumerate(perfect)]
    assert confirmation_time(frames, late, 1) == pytest.approx(0.3)
    assert confirmation_time(frames, [[] for _ in frames], 1) is None
    assert crossing_time([0, 1, 2], [0, 10, 20], 15) == pytest.approx(1.5)
    assert crossing_time([0, 1], [0, 1], 5) is None
