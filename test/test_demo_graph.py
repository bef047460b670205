"""The demo's ROS graph (camera replay → pare_node → bag recorder, three processes): the replay
waits for pare_node itself, so the output bag holds one ~/bodies per replayed frame."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built (run scripts/bootstrap.sh)")

from ros_harness import DOMAIN_ID  # noqa: E402


def test_output_bag_has_one_bodies_message_per_replayed_frame(tmp_path, monkeypatch):
    from pare_ros.ros import demo_graph

    monkeypatch.setenv("ROS_DOMAIN_ID", str(DOMAIN_ID))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    frames = 3
    overrides = {"model.allow_untrained": True, "detector.kind": "full_frame", "tracker.min_hits": 1,
                 "max_image_age": 0.0, "image_qos.reliability": "reliable",
                 "model.dir": str(tmp_path / "no_model")}
    # 5 Hz: faster than CPU inference here, so without waiting for the node's output frames
    # would be dropped as overruns.
    code = demo_graph.run(tmp_path / "demo", "skimage:astronaut", frames, 5.0,
                          demo_graph.REPO / "config" / "pare.yaml", overrides, timeout=10.0)
    bag = tmp_path / "demo" / "pare_output_bag"
    people = demo_graph.summarize(bag)
    log = (tmp_path / "demo" / "camera_replay.log").read_text()
    assert len(people) == frames, log
    assert people[0] == 1                   # the full-frame "detector" finds the astronaut
    assert code == 0
    assert "/pare_node is active and subscribed" in log
    assert len(list((tmp_path / "demo" / "overlays").glob("*.png"))) == frames
