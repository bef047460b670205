"""Multi-process ROS test harness: start nodes as separate processes on a private DDS domain
and talk to them from the test process over real DDS (loopback only)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
DOMAIN_ID = random.Random(os.getpid() ^ int(time.time())).randint(1, 100)


def ros_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    env.update(extra or {})
    return env


def ros_args(params: Dict[str, object], remaps: Optional[Dict[str, str]] = None) -> List[str]:
    args = ["--ros-args"]
    for name, value in params.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, str) and value == "":
            value = "''"
        args += ["-p", f"{name}:={value}"]
    for src, dst in (remaps or {}).items():
        args += ["-r", f"{src}:={dst}"]
    return args


class NodeProcess:
    """A node started with ``python -m <module> --ros-args ...`` whose output goes to a log."""

    def __init__(self, module: str, params: Dict[str, object], log_path: Path,
                 remaps: Optional[Dict[str, str]] = None, env: Optional[Dict[str, str]] = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", module, *ros_args(params, remaps)],
                                     cwd=REPO, env=ros_env(env), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def wait_for_output(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return text in self.output()
            time.sleep(0.2)
        return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def spin_until(executor, condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        executor.spin_once(timeout_sec=0.05)
    return condition()


def publish_bytes_and_receive(msg_type, data: bytes, topic: str, attempts: int = 100):
    """Publish CDR ``data`` (``Publisher.publish(bytes)``) through the real rmw in this process
    and return the first ``msg_type`` message a subscriber on ``topic`` receives (None: none)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    try:
        node = rclpy.create_node(topic + "_node", context=context)
        got = []
        node.create_subscription(msg_type, topic, got.append, 10)
        pub = node.create_publisher(msg_type, topic, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        for _ in range(attempts):
            if got:
                break
            pub.publish(data)
            executor.spin_once(timeout_sec=0.05)
        node.destroy_node()
        return got[0] if got else None
    finally:
        rclpy.try_shutdown(context=context)
