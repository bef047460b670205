"""Camera → world transforms at an image stamp, for tracking in a fixed frame.

On every real robot ``tf2_ros`` is importable: a ``tf2_ros.Buffer`` fed by a
``TransformListener`` answers. Where it is not (the PyPI ROS wheels on these machines), a small
listener of our own subscribes to ``/tf`` and ``/tf_static`` with tf2's QoS (``/tf``: reliable,
volatile, depth 100; ``/tf_static``: reliable, transient local, depth 100, so a late joiner
still gets the latched static frames) and feeds :class:`pare_ros.tf_tree.TransformTree`, which
composes the chain and interpolates in time.

:meth:`TfLookup.lookup` is called from the node's worker thread, never from a callback: it polls
(5 ms steps) for at most ``timeout`` s for data covering the stamp — a TF publisher at 30–100 Hz
usually lags the image by one period — then accepts a bounded extrapolation (our tree: the last
motion continued for at most ``max_extrapolation`` s; tf2_ros, which never extrapolates: the
latest transform when it is at most that old), and otherwise raises :class:`TransformError`
whose message names the missing link or the age of the newest transform. It never blocks a callback and never
waits longer than ``timeout``, so a missing transform costs one frame at most ``timeout``.
"""
from __future__ import annotations

import time
from typing import Optional

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..tf_tree import RigidTransform, TransformError, TransformTree, transform_from_msg

try:  # a normal ROS 2 install
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                    history=HistoryPolicy.KEEP_LAST)
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
POLL = 0.005


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class TfLookup:
    """Args:
        node: the rclpy node (subscriptions are created on it).
        cache_time: s of history kept.
        max_extrapolation: s our own tree may continue the last motion past the newest
            transform (tf2_ros never extrapolates: there the wait has to cover the lag).
        use_tf2: None = tf2_ros when importable; False forces our listener (tests).
    """

    def __init__(self, node, cache_time: float = 10.0, max_extrapolation: float = 0.1,
                 use_tf2: Optional[bool] = None) -> None:
        self.node = node
        self.backend = "tf2_ros" if (tf2_ros is not None and use_tf2 is not False) else "pare_ros.tf_tree"
        self.received = 0
        self.max_extrapolation = float(max_extrapolation)
        if self.backend == "tf2_ros":
            from rclpy.duration import Duration

            self._buffer = tf2_ros.Buffer(cache_time=Duration(seconds=cache_time), node=node)
            self._listener = tf2_ros.TransformListener(self._buffer, node, spin_thread=False)
            self._subs = []
        else:
            from tf2_msgs.msg import TFMessage

            self.tree = TransformTree(cache_time=cache_time, max_extrapolation=max_extrapolation)
            self._subs = [node.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), TF_QOS),
                          node.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True),
                                                   TF_STATIC_QOS)]

    def _on_tf(self, msg, static: bool) -> None:
        for t in msg.transforms:
            quat, trans = transform_from_msg(t.transform)
            try:
                self.tree.set_transform(t.header.frame_id, t.child_frame_id, _seconds(t.header.stamp), quat,
                                        trans, static=static)
                self.received += 1
            except ValueError as exc:   # one bad transform must not drop the rest of the message
                self.node.get_logger().warning(f"ignoring transform: {exc}", throttle_duration_sec=5.0)

    def lookup(self, target: str, source: str, stamp: float, timeout: float = 0.05) -> RigidTransform:
        """T_target_source at ``stamp`` s (maps points in ``source`` into ``target``), waiting at
        most ``timeout`` s. Raises :class:`TransformError`."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while time.monotonic() < deadline:
            try:
                return self._lookup_once(target, source, stamp, extrapolate=False)
            except TransformError:
                time.sleep(POLL)
        return self._lookup_once(target, source, stamp, extrapolate=True)

    def _lookup_once(self, target: str, source: str, stamp: float, extrapolate: bool) -> RigidTransform:
        if self.backend != "tf2_ros":
            return self.tree.lookup(target, source, stamp, max_extrapolation=None if extrapolate else 0.0)
        from rclpy.time import Time

        try:
            msg = self._buffer.lookup_transform(target, source, Time(nanoseconds=int(round(stamp * 1e9))))
        except tf2_ros.TransformException as exc:   # Lookup/Connectivity/Extrapolation
            if not extrapolate:
                raise TransformError(str(exc)) from exc
            try:
                msg = self._buffer.lookup_transform(target, source, Time())     # the latest
            except tf2_ros.TransformException:
                raise TransformError(str(exc)) from exc
            age = stamp - _seconds(msg.header.stamp)
            if not 0.0 <= age <= self.max_extrapolation:
                raise TransformError(f"{exc} (latest transform {age:.3f} s before the image)") from exc
        quat, trans = transform_from_msg(msg.transform)
        return RigidTransform.from_quaternion(quat, trans)

    def clear(self) -> None:
        """Forget the dynamic history (the clock jumped back: a restarted bag)."""
        if self.backend == "tf2_ros":
            self._buffer.clear()
        else:
            self.tree.clear()

    def destroy(self) -> None:
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []
        if self.backend == "tf2_ros":
            self._listener.unregister()
