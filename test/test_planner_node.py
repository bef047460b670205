"""pare_node over DDS for planners: a TF publisher moves the camera while the test stand-in
for the network (test/planner_stand_in.py) shows people at known places; the node runs in its own
process (ros_harness), world_frame odom.
"""
from __future__ import annotations

import math
import os
import random
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")
pytest.importorskip("people_msgs.msg", reason="people_msgs not built (ros_compat/people_msgs)")
pytest.importorskip("hri_msgs.msg", reason="hri_msgs not built (ros_compat/hri_msgs)")
pytest.importorskip("nav_msgs.msg", reason="nav_msgs not installed (requirements-ros.txt)")

from test_planner_outputs import FRAME, H, W, image_for, image_msgs, robot_pose  # noqa: E402
from planner_stand_in import level_camera_pose  # noqa: E402

# ----------------------------------------------------------------------------------- over DDS
# A domain of its own, outside ros_harness's 1-100: /humans/bodies/tracked is an absolute REP-155
# topic that every pare_node of a parallel test run would also publish on a shared domain.
DOMAIN = random.Random(os.getpid() ^ time.time_ns()).randint(101, 200)
STATIC_OPTICAL = level_camera_pose(0.0, 0.0, 0.0)       # base_link → camera_optical (1.2 m up)


class PlannerClient:
    """Publishes camera frames, /tf (odom → base_link per frame) and /tf_static (base_link →
    camera_optical), and records what the node publishes for planners."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from diagnostic_msgs.msg import DiagnosticArray
        from hri_msgs.msg import IdsList
        from people_msgs.msg import People
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_msgs.msg import TFMessage

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN)
        self.node = rclpy.create_node("planner_test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.image_pub = self.node.create_publisher(Image, "/cam/image", reliable)
        self.info_pub = self.node.create_publisher(CameraInfo, "/cam/camera_info", reliable)
        self.tf_pub = self.node.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))
        self.static_pub = self.node.create_publisher(TFMessage, "/tf_static", latched)
        self.people, self.tracked, self.diagnostics = [], [], []
        self.node.create_subscription(People, "/pare_node/people", self.people.append, reliable)
        self.node.create_subscription(IdsList, "/humans/bodies/tracked", self.tracked.append, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, reliable)
        self.t0 = float(int(time.time()))
        self.scene_time = self.scene_start = 0.0

    def new_scene(self) -> float:
        """Scene time of a new scene's first frame: after a gap (old tracks die), never ahead
        of the wall clock (the node rejects far-future stamps); the robot starts again."""
        self.scene_start = max(self.scene_time + 2.0, time.time() - self.t0)
        return self.scene_start

    def end_scene(self, last: float) -> None:
        """Two empty frames after the scene's last one at ``last``: its tracks end."""
        self.frame(last + 1.0, [])
        self.frame(last + 2.0, [])
        self.scene_time = last + 2.0

    def spin(self, condition, timeout=60.0) -> bool:
        from ros_harness import spin_until

        return spin_until(self.executor, condition, timeout)

    def close(self):
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def _tf(self, parent, child, stamp, rot, trans):
        from geometry_msgs.msg import TransformStamped
        from scipy.spatial.transform import Rotation

        from pare_ros.ros.planner_outputs import stamp_msg

        t = TransformStamped()
        t.header.frame_id, t.child_frame_id, t.header.stamp = parent, child, stamp_msg(stamp)
        q = Rotation.from_matrix(rot).as_quat()
        t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w = q
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (float(v) for v in trans)
        return t

    def send_static(self):
        from tf2_msgs.msg import TFMessage

        self.static_pub.publish(TFMessage(transforms=[
            self._tf("base_link", FRAME, self.t0, STATIC_OPTICAL[0], STATIC_OPTICAL[1] - [0, 0, 0])]))

    def frame(self, t: float, people_world, tf: bool = True, still_robot: bool = False, wait: float = 0.0):
        """Send the scene at scene time t (stamp t0 + t) and wait for its ~/people (``wait`` > 0:
        at most that long, None when it does not come)."""
        from tf2_msgs.msg import TFMessage

        stamp = self.t0 + t
        # Never more than 0.5 s ahead of the wall clock: the node rejects far-future stamps.
        self.spin(lambda: time.time() >= stamp - 0.5, 30)
        rot, trans = robot_pose(t - self.scene_start, still_robot)
        if tf:   # base pose = camera pose without the static optical rotation and mast
            base_rot = rot @ STATIC_OPTICAL[0].T
            self.tf_pub.publish(TFMessage(transforms=[self._tf("odom", "base_link", stamp, base_rot,
                                                               trans - [0, 0, 1.2])]))
        msg, info = image_msgs(image_for(people_world, (rot, trans)) if people_world else
                               np.zeros((H, W, 3), np.uint8), stamp)
        self.info_pub.publish(info)
        self.image_pub.publish(msg)
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        came = self.spin(lambda: any((p.header.stamp.sec, p.header.stamp.nanosec) == key for p in self.people),
                         wait or 60)
        if wait and not came:
            return None
        assert came, f"no ~/people for t={t}"
        return next(p for p in self.people if (p.header.stamp.sec, p.header.stamp.nanosec) == key)

    def tracked_at(self, people_msg):
        key = (people_msg.header.stamp.sec, people_msg.header.stamp.nanosec)
        assert self.spin(lambda: any((m.header.stamp.sec, m.header.stamp.nanosec) == key for m in self.tracked), 30)
        return next(m for m in self.tracked if (m.header.stamp.sec, m.header.stamp.nanosec) == key).ids

    def world_status(self):
        """(level int, message) of the node's latest world_frame diagnostics status, or None."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name.endswith("/world_frame"):
                    level = status.level
                    return (level[0] if isinstance(level, (bytes, bytearray)) else int(level)), status.message
        return None


@pytest.fixture(scope="module")
def planner_node(tmp_path_factory):
    from ros_harness import REPO, NodeProcess

    tmp = tmp_path_factory.mktemp("planner_node")
    params = {"image_qos.reliability": "reliable", "model.allow_untrained": True,
              "model.dir": str(tmp / "no_model"), "detector.kind": "full_frame", "tracker.min_hits": 3,
              "tracker.max_age": 0.25, "max_image_age": 0.0, "expected_rate": 1.0, "diagnostics_period": 0.5,
              "publish_markers": False, "world_frame": "odom", "tf_lookup.timeout": 0.3}
    env = {"PYTHONPATH": f"{REPO / 'test'}:{os.environ.get('PYTHONPATH', '')}", "ROS_DOMAIN_ID": str(DOMAIN)}
    proc = NodeProcess("planner_stand_in", params, tmp / "pare_node.log",
                       remaps={"image": "/cam/image", "camera_info": "/cam/camera_info"}, env=env)
    client = PlannerClient()
    try:
        assert proc.wait_for_output("listening on", 240), proc.output()
        assert client.spin(lambda: client.image_pub.get_subscription_count() > 0
                           and client.node.count_subscribers("/tf_static") > 0
                           and client.node.count_publishers("/pare_node/people") > 0, 60), proc.output()
        client.send_static()
        # prime: frames until one is answered (discovery can precede delivery by a moment)
        t, answered = 0.0, False
        while not answered and t < 60:
            t += 1.0
            answered = client.frame(t, [], wait=2.0) is not None
        assert answered, proc.output()
        client.scene_time = t
        yield proc, client
    finally:
        client.close()
        proc.stop()


def _run_scene(client, walk, seconds, rate=10.0, **kw):
    """(scene time, People) per frame; scene time restarts at 0 (stamps keep increasing)."""
    base = client.new_scene()
    out = []
    for k in range(int(round(seconds * rate))):
        out.append((k / rate, client.frame(base + k / rate, [walk(k / rate)], **kw)))
    client.end_scene(base + seconds)
    return out


def test_still_person_from_a_moving_robot_over_dds(planner_node):
    """world_frame odom: position within 5 cm, speed < 0.1 m/s while the robot drives and
    turns; then TF stops: camera-frame fallback, WARN, and the same scene shows the ego-motion."""
    _, client = planner_node
    person = np.array([6.0, 1.5, 0.93])
    base = client.new_scene()
    frames = [(k / 10.0, client.frame(base + k / 10.0, [person])) for k in range(25)]
    seen = [(t, p) for t, p in frames if p.people]
    assert seen and seen[0][0] <= 0.25, "the person was never confirmed\n" + planner_node[0].output()[-3000:]
    for t, msg in seen:
        assert msg.header.frame_id == "odom"
        (p,) = msg.people
        assert np.linalg.norm([p.position.x - person[0], p.position.y - person[1], p.position.z - person[2]]) < 0.05
        if t >= 1.0:
            assert math.hypot(p.velocity.x, p.velocity.y) < 0.1, (t, p.velocity)
    assert client.spin(lambda: client.world_status() is not None and client.world_status()[0] == 0, 10)
    # TF stops (robot still driving): after tf_lookup.max_extrapolation the node falls back.
    fallback = [client.frame(base + 2.5 + k / 10.0, [person], tf=False) for k in range(20)]
    cam = [m for m in fallback if m.header.frame_id == FRAME and m.people]
    assert len(cam) >= 10, [m.header.frame_id for m in fallback]
    speeds = [math.hypot(m.people[0].velocity.x, m.people[0].velocity.z) for m in cam[-5:]]
    assert min(speeds) > 0.4, speeds          # the robot's motion, seen as the person's
    assert client.spin(lambda: client.world_status()[0] == 1, 10), client.world_status()
    assert "odom" in client.world_status()[1]
    client.end_scene(base + 4.5)


def test_walker_people_velocity_after_one_second(planner_node):
    _, client = planner_node
    v = np.array([-0.3, -1.2, 0.0])
    start = np.array([5.0, 1.8, 0.93])
    frames = _run_scene(client, lambda t: start + v * t, 1.1)
    t, msg = frames[-1]
    assert t == pytest.approx(1.0) and msg.header.frame_id == "odom"
    (p,) = msg.people
    assert np.linalg.norm([p.velocity.x - v[0], p.velocity.y - v[1]]) < 0.15, p.velocity
    assert p.tagnames[0] == "body_id" and p.name.isdigit()


def test_tracked_ids_are_the_confirmed_tracks_and_body_topics_follow(planner_node):
    _, client = planner_node
    a, b = np.array([5.0, 1.2, 0.93]), np.array([5.5, -1.2, 0.93])
    base = client.new_scene()
    seq = []
    for k in range(12):      # a from the start; b from frame 5 (confirmed at its 3rd frame)
        people = [a] + ([b] if k >= 5 else [])
        msg = client.frame(base + k / 10.0, people, still_robot=True)
        seq.append((k, msg, client.tracked_at(msg)))
    for k, msg, ids in seq:
        body_ids = sorted(p.tags[0] for p in msg.people)
        assert sorted(ids) == body_ids, (k, ids, body_ids)
        assert len(ids) == (k >= 2) + (k >= 7), (k, ids)     # tentative tracks are never listed
    ids = seq[-1][2]
    for body_id in ids:
        for topic in ("roi", "skeleton2d", "velocity", "forecast"):
            assert client.spin(lambda: client.node.count_publishers(f"/humans/bodies/{body_id}/{topic}") > 0, 10)
    b_id = (set(ids) - set(seq[4][2])).pop()
    # b leaves: after tracker.max_age its id leaves the list and its topics disappear
    for k in range(12, 20):
        msg = client.frame(base + k / 10.0, [a], still_robot=True)
    assert client.tracked_at(msg) == [i for i in ids if i != b_id]
    assert client.spin(lambda: client.node.count_publishers(f"/humans/bodies/{b_id}/roi") == 0, 10)
    assert client.node.count_publishers(f"/humans/bodies/{b_id}/forecast") == 0
    client.end_scene(base + 2.0)


def test_builtin_tf_listener_late_joiner_and_interpolation():
    """TfLookup without tf2_ros: the latched /tf_static reaches a listener created after it was
    sent (transient local), /tf samples are interpolated at a stamp between them, and a missing
    frame gives a TransformError naming it within the timeout."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from tf2_msgs.msg import TFMessage

    from pare_ros.ros.tf_lookup import TfLookup
    from pare_ros.tf_tree import TransformError
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN)
    try:
        pub_node = rclpy.create_node("tf_source", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(pub_node)
        client = PlannerClient.__new__(PlannerClient)        # only for its _tf() builder
        static = pub_node.create_publisher(TFMessage, "/tf_static", QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        dynamic = pub_node.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))
        static.publish(TFMessage(transforms=[client._tf("base_link", FRAME, 0.0, *STATIC_OPTICAL)]))
        listen_node = rclpy.create_node("tf_listener", context=context)
        executor.add_node(listen_node)
        lookup = TfLookup(listen_node, use_tf2=False)
        from ros_harness import spin_until

        assert spin_until(executor, lambda: dynamic.get_subscription_count() > 0, 20)
        for t in (10.0, 10.1):
            x = 1.0 if t == 10.0 else 2.0
            dynamic.publish(TFMessage(transforms=[client._tf("odom", "base_link", t, np.eye(3), [x, 0.0, 0.0])]))
        assert spin_until(executor, lambda: lookup.received >= 3, 20), lookup.received
        pose = lookup.lookup("odom", FRAME, 10.05, timeout=0.0)
        np.testing.assert_allclose(pose.translation, [1.5, 0.0, 1.2], atol=1e-9)
        np.testing.assert_allclose(pose.rotation, STATIC_OPTICAL[0], atol=1e-9)
        with pytest.raises(TransformError, match="map"):
            lookup.lookup("map", FRAME, 10.05, timeout=0.02)
        lookup.destroy()
    finally:
        rclpy.try_shutdown(context=context)


def test_forecast_swept_region_only_while_subscribed(planner_node):
    """~/forecast_points: the walker's decimated body carried along the forecast, in odom; its
    root-level points at t = 1 s lie where constant velocity puts them."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    from pare_ros.ros.planner_outputs import POINT_DTYPE

    _, client = planner_node
    clouds = []
    sub = client.node.create_subscription(PointCloud2, "/pare_node/forecast_points", clouds.append,
                                          QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
    assert client.spin(lambda: client.node.count_publishers("/pare_node/forecast_points") > 0, 10)
    v = np.array([0.0, -1.2, 0.0])
    start = np.array([5.0, 1.5, 0.93])
    client.spin(lambda: False, 1.0)                      # discovery of the new subscription
    frames = _run_scene(client, lambda t: start + v * t, 1.6, still_robot=True)
    t, msg = frames[-1]
    (person,) = msg.people
    assert client.spin(lambda: any(c.header.stamp == msg.header.stamp for c in clouds), 10)
    cloud = next(c for c in clouds if c.header.stamp == msg.header.stamp)
    assert cloud.header.frame_id == "odom"
    pts = np.frombuffer(bytes(cloud.data), POINT_DTYPE)
    assert set(pts["track_id"].tolist()) == {int(person.name)}
    assert pts["t"].min() == 0.0 and abs(pts["t"].max() - 1.5) < 1e-6
    now, later = pts[pts["t"] == 0.0], pts[np.isclose(pts["t"], 1.0)]
    assert len(now) > 20                                  # a decimated mesh, not just the root
    centre_now = np.array([now["x"].mean(), now["y"].mean()])
    centre_later = np.array([later["x"].mean(), later["y"].mean()])
    truth_now = (start + v * t)[:2]
    assert np.linalg.norm(centre_now - truth_now) < 0.2
    assert np.linalg.norm(centre_later - (truth_now + v[:2])) < 0.25
    client.node.destroy_subscription(sub)
