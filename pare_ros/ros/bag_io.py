"""rosbag2 reading and writing without a ROS installation (the ``rosbags`` package), with
payloads serialised by rclpy so that the bags are byte-identical to what ``ros2 bag`` records.
Both storage formats are supported: MCAP and sqlite3.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

PROJECT_MESSAGES = ("SmplBody", "SmplBodyArray")


def message_class(msgtype: str):
    """``'sensor_msgs/msg/Image'`` → the rclpy message class."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def msgtype_of(msg) -> str:
    module = type(msg).__module__.split(".")[0]
    return f"{module}/msg/{type(msg).__name__}"


def _msg_dir() -> Path:
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("pare_ros")) / "msg"
        if installed.is_dir():
            return installed
    except Exception:  # noqa: BLE001 - not installed via colcon: use the source tree
        pass
    return Path(__file__).resolve().parents[2] / "msg"


def project_typestore():
    """Kilted's standard types plus this package's messages (read from their .msg files)."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name in PROJECT_MESSAGES:
        text = (_msg_dir() / f"{name}.msg").read_text()
        types.update(get_types_from_msg(text, f"pare_ros/msg/{name}"))
    store.register(types)
    return store


def storage_for(path: Path, storage: Optional[str]) -> StoragePlugin:
    name = (storage or ("sqlite3" if str(path).endswith("db3") else "mcap")).lower()
    return {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[name]


class BagWriter:
    """Writes rclpy messages to a new rosbag2 directory (connections created on first use)."""

    def __init__(self, path: str | Path, storage: Optional[str] = None) -> None:
        self.path = Path(path)
        self.typestore = project_typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=storage_for(self.path, storage))
        self._connections: Dict[Tuple[str, str], object] = {}
        self.count = 0

    def __enter__(self) -> "BagWriter":
        self._writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def write(self, topic: str, msg, stamp_ns: int) -> None:
        self.write_raw(topic, msgtype_of(msg), serialize_message(msg), stamp_ns)

    def write_raw(self, topic: str, msgtype: str, data: bytes, stamp_ns: int) -> None:
        key = (topic, msgtype)
        if key not in self._connections:
            self._connections[key] = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
        self._writer.write(self._connections[key], int(stamp_ns), data)
        self.count += 1


def read_messages(path: str | Path, topics: Optional[set] = None) -> Iterator[Tuple[str, str, int, object]]:
    """Yield (topic, msgtype, log-time ns, rclpy message) in log-time order."""
    with Reader(Path(path)) as reader:
        connections = [c for c in reader.connections if topics is None or c.topic in topics]
        if not connections:
            return   # rosbags reads every connection when given none
        for connection, timestamp, data in reader.messages(connections=connections):
            yield connection.topic, connection.msgtype, timestamp, \
                deserialize_message(bytes(data), message_class(connection.msgtype))
