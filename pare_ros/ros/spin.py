"""Spinning a node until Ctrl-C / shutdown, the same way for every executable of the package."""
from __future__ import annotations

from typing import Callable, Optional

import rclpy
from rclpy.executors import ExternalShutdownException


def spin_until_shutdown(node, on_exit: Optional[Callable[[], None]] = None) -> int:
    """Spin ``node``; on SIGINT or external shutdown run ``on_exit``, destroy the node and
    shut rclpy down. Returns the process exit code (0)."""
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, SystemExit, ExternalShutdownException):
        pass
    finally:
        if on_exit is not None:
            on_exit()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
