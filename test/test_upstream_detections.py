"""detector.kind 'topic': boxes from an upstream vision_msgs/Detection2DArray, published best
effort and later than 0.1 s after the image, pair with their image by stamp.

vision_msgs has no PyPI wheel, so this runs only where a ROS 2 install provides it; the pairing
logic itself is tested without ROS in test_pairing.py.
"""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")
vision_msgs = pytest.importorskip("vision_msgs.msg", reason="vision_msgs is not installable from PyPI")

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from ros_harness import NodeProcess  # noqa: E402
from test_ros_node import Client  # noqa: E402


def _detections(stamp, boxes):
    array = vision_msgs.Detection2DArray()
    array.header.stamp = stamp
    for x0, y0, x1, y1 in boxes:
        det = vision_msgs.Detection2D()
        det.bbox.center.position.x, det.bbox.center.position.y = (x0 + x1) / 2, (y0 + y1) / 2
        det.bbox.size_x, det.bbox.size_y = float(x1 - x0), float(y1 - y0)
        hyp = vision_msgs.ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = "person", 0.9
        det.results.append(hyp)
        array.detections.append(det)
    return array


def test_slow_best_effort_detector_pairs_by_stamp(tmp_path):
    params = {"image_qos.reliability": "reliable", "model.allow_untrained": True, "detector.kind": "topic",
              "tracker.min_hits": 1, "tracker.max_age": 5.0, "tracker.max_coast": 5.0, "max_image_age": 0.0,
              "diagnostics_period": 0.5,
              "model.dir": str(tmp_path / "m")}
    proc = NodeProcess("pare_ros.ros.node", params, tmp_path / "log.txt",
                       remaps={"image": "/cam/image", "camera_info": "/cam/camera_info", "detections": "/cam/people"})
    client = Client("pare_detections_client")
    best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    det_pub = client.node.create_publisher(vision_msgs.Detection2DArray, "/cam/people", best_effort)
    try:
        assert proc.wait_for_output("listening on", 180), proc.output()
        assert client.wait_connected() and client.spin(lambda: det_pub.get_subscription_count() > 0, 30)
        for people in ([(20, 20, 300, 460)], [(20, 20, 300, 460), (340, 30, 620, 470)]):
            stamp = client.next_stamp()
            client.send(client.image(stamp))
            client.spin(lambda: False, 0.4)               # a detector slower than 0.1 s
            for _ in range(3):                             # best effort may lose a sample
                det_pub.publish(_detections(stamp, people))
                if client.spin(lambda: client.bodies_for(stamp), 20):
                    break
            assert len(client.served(stamp).bodies) == len(people)
    finally:
        client.close()
        proc.stop()
