"""Outputs for planners, in-process: fixed-frame tracking through FrameProcessor (known answers
from constructed scenes) and the message builders. Over DDS: test_planner_node.py.

Scenes use the test stand-in for the network (test/planner_stand_in.py): the node sees each
person exactly where the scene puts them, so every tolerance below is about tracking, frames and
publishing, not about PARE.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")

from planner_stand_in import BoxDetector, BoxEstimator, level_camera_pose, person_box, render  # noqa: E402
from pare_ros.camera import Intrinsics  # noqa: E402
from pare_ros.tf_tree import RigidTransform  # noqa: E402
from pare_ros.world_frame import estimate_in_frame  # noqa: E402

W, H = 640, 480
K = Intrinsics(520.0, 520.0, 320.0, 240.0)
FRAME = "camera_optical"


def robot_pose(t: float, still: bool = False):
    """Camera on a robot driving at 0.6 m/s while turning at 0.2 rad/s (camera → odom)."""
    if still:
        return level_camera_pose(0.0, 0.0, 0.0)
    yaw = 0.2 * t
    return level_camera_pose(3.0 * math.sin(yaw), 3.0 * (1 - math.cos(yaw)), yaw)


def image_for(people_world, pose):
    rot, trans = pose
    boxes = [person_box((np.asarray(p) - trans) @ rot, K.fx, K.fy, K.cx, K.cy) for p in people_world]
    return render(boxes, W, H)


def image_msgs(rgb, stamp: float):
    from sensor_msgs.msg import CameraInfo, Image

    from pare_ros.ros.planner_outputs import stamp_msg

    msg = Image(height=H, width=W, encoding="rgb8", step=3 * W, data=rgb.tobytes())
    msg.header.stamp, msg.header.frame_id = stamp_msg(stamp), FRAME
    info = CameraInfo(width=W, height=H, k=[K.fx, 0.0, K.cx, 0.0, K.fy, K.cy, 0.0, 0.0, 1.0])
    info.header = msg.header
    return msg, info


def test_smpl_in_the_world_frame_is_the_rigidly_moved_camera_body(body_model):
    """estimate_in_frame's parameters, run through SMPL, give the camera body moved by T."""
    from pare_ros.estimator import rebuild_bodies

    est = BoxEstimator(body_model)
    body = est.estimate(np.zeros((H, W, 3), np.uint8), [[300, 100, 360, 400]], K).bodies[0]
    from scipy.spatial.transform import Rotation

    t = RigidTransform(Rotation.from_euler("zyx", [0.7, -0.2, 0.3]).as_matrix(), np.array([3.0, -1.0, 1.2]))
    world = estimate_in_frame(body, t)
    again = rebuild_bodies(body_model, [body], world.rotmats[None], body.betas[None], world.transl[None], K)[0]
    np.testing.assert_allclose(again.vertices, t.apply(body.vertices), atol=2e-5)
    np.testing.assert_allclose(world.joints3d, t.apply(body.joints3d), atol=1e-9)


def test_stand_in_sees_the_person_where_the_scene_puts_them(body_model):
    pose = robot_pose(1.3)
    person = np.array([4.0, 1.5, 0.93])
    rgb = image_for([person], pose)
    boxes = BoxDetector().detect(rgb).boxes
    body = BoxEstimator(body_model).estimate(rgb, boxes, K).bodies[0]
    rot, trans = pose
    np.testing.assert_allclose(body.joints3d[0] @ rot.T + trans, person, atol=3e-3)


def _processor(body_model, min_hits=1):
    from pare_ros.ros.frame_processor import FrameProcessor, ProcessorSettings
    from pare_ros.tracking import BodySmoother, Tracker

    return FrameProcessor(BoxEstimator(body_model), BoxDetector(), Tracker(min_hits=min_hits, max_age=0.5),
                          ProcessorSettings(publish_markers=False), smoother=BodySmoother())


def _run(processor, walk, still_robot=False, world=True, rate=10.0, seconds=2.0):
    """Feed a scene; returns [(t, PlannerFrame)]. ``walk``: t → person root (3,) world."""
    out = []
    for k in range(int(seconds * rate)):
        t = 100.0 + k / rate
        rot, trans = pose = robot_pose(t - 100.0, still_robot)
        msg, info = image_msgs(image_for([walk(t - 100.0)], pose), t)
        result = processor.process(msg, info, want_markers=False, world_frame="odom" if world else "",
                                   world_transform=RigidTransform(rot, trans) if world else None)
        out.append((t - 100.0, result.planner))
    return out


def test_still_person_seen_from_a_driving_turning_robot(body_model):
    person = np.array([5.0, 1.0, 0.93])
    frames = _run(_processor(body_model), lambda t: person)
    for t, frame in frames[3:]:
        (track,) = frame.tracks
        assert frame.frame_id == "odom"
        assert np.linalg.norm(track.position - person) < 0.05, (t, track.position)
        if t > 0.5:
            assert np.linalg.norm(track.velocity) < 0.1, (t, track.velocity)
    # The same scene tracked in the camera frame shows the robot's motion (the test can fail).
    cam = _run(_processor(body_model), lambda t: person, world=False)
    assert cam[-1][1].frame_id == FRAME
    assert np.linalg.norm(cam[-1][1].tracks[0].velocity) > 0.5


def test_walker_velocity_after_one_second_at_10_hz(body_model):
    v = np.array([-0.3, -1.2, 0.0])
    start = np.array([5.0, 1.5, 0.93])
    frames = _run(_processor(body_model), lambda t: start + v * t, seconds=1.1)
    t, frame = frames[-1]
    assert t == pytest.approx(1.0)
    assert np.linalg.norm(frame.tracks[0].velocity - v) < 0.15, frame.tracks[0].velocity
    assert np.linalg.norm(frame.tracks[0].position - (start + v * t)) < 0.3


def test_message_builders(body_model):
    pytest.importorskip("people_msgs.msg", reason="people_msgs not built (ros_compat/people_msgs)")
    pytest.importorskip("hri_msgs.msg", reason="hri_msgs not built (ros_compat/hri_msgs)")
    from pare_ros.ros.planner_outputs import (SKELETON2D_FROM_BODY25, person_msg, planner_markers, roi_msg,
                                              skeleton_msg, swept_cloud_msg)
    from pare_ros.tracking.forecast import ForecastParams, forecast_root
    from std_msgs.msg import Header

    person = np.array([5.0, 1.0, 0.93])
    _, frame = _run(_processor(body_model), lambda t: person + [0.0, -1.0 * t, 0.0], seconds=1.0)[-1]
    track = frame.tracks[0]
    header = Header(frame_id="odom")
    p = person_msg(track, planar=True)
    assert p.name == str(track.track_id) and p.tags[0] == track.body_id and p.velocity.z == 0.0
    assert abs(p.position.y - track.position[1]) < 1e-9
    roi = roi_msg(track, header, (W, H))
    assert 0 <= roi.xmin < roi.xmax <= 1 and 0 <= roi.ymin < roi.ymax <= 1
    skel = skeleton_msg(track, header, (W, H))
    assert len(skel.skeleton) == 18
    nose, lhip = skel.skeleton[skel.NOSE], skel.skeleton[skel.LEFT_HIP]
    assert nose.y < lhip.y                        # head above the hips in the image
    assert SKELETON2D_FROM_BODY25[skel.LEFT_EYE] == 16
    fc = forecast_root(frame.stamp, track.position, track.velocity, ForecastParams(up=(0, 0, 1)))
    cloud = swept_cloud_msg(header, [track], [fc])
    assert cloud.width == len(fc.times) and cloud.point_step == 24
    markers = planner_markers(header, [track], [fc], removed=[99])
    assert [m.action for m in markers.markers[:3]] == [2, 2, 2] and len(markers.markers) == 6


def test_outputs_without_people_msgs_or_hri_msgs_still_publish_the_rest(body_model, monkeypatch):
    """A robot without people_msgs (no Jazzy/Kilted release) or hri_msgs: those outputs are
    skipped with one warning each, the rest (forecast cloud, markers) still works."""
    import rclpy

    from pare_ros.ros import planner_outputs as po
    from pare_ros.tracking.forecast import ForecastParams

    monkeypatch.setattr(po, "People", None)
    monkeypatch.setattr(po, "IdsList", None)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=231)
    try:
        node = rclpy.create_node("planner_outputs_test", context=context)
        outputs = po.PlannerOutputs(node, ForecastParams())
        assert outputs.people_pub is None and outputs.tracked_pub is None
        _, frame = _run(_processor(body_model), lambda t: np.array([5.0, 1.0, 0.93]), seconds=0.3)[-1]
        outputs.publish(frame)                  # nothing raises; no per-body publishers
        assert outputs._bodies == {}
        outputs.reset()
        outputs.destroy()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
