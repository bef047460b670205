"""A small rosbag2 recorder node (``ros2 bag record`` is not available from PyPI).

Subscribes to the listed topics as soon as they appear in the graph, with the reliability of
their publishers, and writes every message with its receive time into an MCAP or sqlite3 bag.

    ros2 run pare_ros bag_recorder --ros-args -p output:=out/run -p topics:="[/pare_node/bodies,/tf]"
"""
from __future__ import annotations

import sys
import threading

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from .bag_io import BagWriter, message_class
from .spin import spin_until_shutdown


class Recorder(Node):
    def __init__(self) -> None:
        super().__init__("bag_recorder")
        d = lambda text: ParameterDescriptor(description=text)  # noqa: E731
        self.declare_parameter("output", "recording", d("bag directory to create"))
        self.declare_parameter("storage", "mcap", d("mcap | sqlite3"))
        self.declare_parameter("topics", ["/tf"], d("absolute topic names to record"))
        self.wanted = list(self.get_parameter("topics").value)
        self.bag = BagWriter(self.get_parameter("output").value, self.get_parameter("storage").value)
        self.bag.__enter__()
        self.lock = threading.Lock()
        self.subscriptions_by_topic = {}
        self.timer = self.create_timer(0.2, self._discover)
        self.get_logger().info(f"recording {self.wanted} to {self.bag.path}")

    def _discover(self) -> None:
        types = dict(self.get_topic_names_and_types())
        for topic in self.wanted:
            if topic in self.subscriptions_by_topic or topic not in types:
                continue
            msgtype = types[topic][0]
            publishers = self.get_publishers_info_by_topic(topic)
            reliable = publishers and all(
                p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE if reliable
                             else ReliabilityPolicy.BEST_EFFORT)
            self.subscriptions_by_topic[topic] = self.create_subscription(
                message_class(msgtype), topic,
                lambda data, t=topic, m=msgtype: self._write(t, m, data), qos, raw=True)
            self.get_logger().info(f"recording {topic} [{msgtype}]")

    def _write(self, topic: str, msgtype: str, data: bytes) -> None:
        with self.lock:
            self.bag.write_raw(topic, msgtype, data, self.get_clock().now().nanoseconds)

    def close(self) -> None:
        with self.lock:
            self.bag.__exit__(None, None, None)
        self.get_logger().info(f"wrote {self.bag.count} messages to {self.bag.path}")


def main(argv=None) -> int:
    rclpy.init(args=argv)
    node = Recorder()
    return spin_until_shutdown(node, on_exit=node.close)

if __name__ == "__main__":
    sys.exit(main())
