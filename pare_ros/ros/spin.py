"""Spinning a node until Ctrl-C / shutdown, the same way for every executable of the package."""
from __future__ import annotations

from typing import Callable, Optional

import rclpy
from rclpy.executors import ExternalShutdownException


def spin_until_shutdown(node, on_exit: Optional[Callable[[], None]] = None, executor=None) -> int:
    """Spin ``node`` (with ``executor``, e.g. a MultiThreadedExecutor so that services in their
    own callback group answer while another callback runs; default: rclpy's single-threaded
    one); on SIGINT or external shutdown run ``on_exit``, destroy the node and shut rclpy down.
    Returns the process exit code (0)."""
    try:
        if executor is None:
            rclpy.spin(node)
        else:
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, SystemExit, ExternalShutdownException):
        pass
    finally:
        if on_exit is not None:
            on_exit()
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
