"""The Fast DDS profile for camera-sized messages (``config/fastdds_large_images.xml``).

Used by the demo graph and the multi-process tests, which start every participant themselves;
on a robot the user exports the variables for the camera driver and the node
(docs/install.md, docs/troubleshooting.md).

Fast DDS reads the file from a different variable per major version: 2.x (ROS 2 Jazzy, Fast DDS
2.14) only ``FASTRTPS_DEFAULT_PROFILES_FILE``, 3.x (Kilted) ``FASTDDS_DEFAULT_PROFILES_FILE``.
A profile named by the other one is silently ignored; Fast DDS 3 still reads the old name but
logs a deprecation warning in every process. So the variable of the Fast DDS that is installed
is set (found from its library, libfastrtps.so = 2.x, libfastdds.so = 3.x), both when unknown.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import MutableMapping, Optional, Tuple

PROFILE_NAME = "fastdds_large_images.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
# Every participant maps a 16 MiB segment; leave the profile off where /dev/shm is small
# (e.g. Docker's 64 MiB default), where Fast DDS's own small segments are the safer choice.
MIN_FREE_SHM = 1 << 30


def profile_path() -> Path:
    """The profile in the source tree, else in the installed package share directory."""
    source = Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME
    if source.is_file():
        return source
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("pare_ros")) / "config" / PROFILE_NAME


def fast_dds_variables(environ: Optional[MutableMapping[str, str]] = None) -> Tuple[str, ...]:
    """The profile variable(s) the installed Fast DDS reads: ``FASTRTPS_DEFAULT_PROFILES_FILE``
    for 2.x (Jazzy and older), ``FASTDDS_DEFAULT_PROFILES_FILE`` for 3.x (Kilted and newer),
    both when no Fast DDS library is found in the ROS prefixes or this environment."""
    environ = os.environ if environ is None else environ
    prefixes = [p for p in environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if environ.get("ROS_DISTRO"):
        prefixes.append(f"/opt/ros/{environ['ROS_DISTRO']}")
    prefixes.append(sys.prefix)                # the PyPI wheels install into the environment
    for prefix in prefixes:
        lib = Path(prefix) / "lib"
        if any(lib.glob("libfastdds.so*")):
            return ("FASTDDS_DEFAULT_PROFILES_FILE",)
        if any(lib.glob("libfastrtps.so*")):
            return ("FASTRTPS_DEFAULT_PROFILES_FILE",)
    return PROFILE_VARIABLES


def use_large_image_profile(environ: Optional[MutableMapping[str, str]] = None,
                            shm: str = "/dev/shm") -> Optional[Path]:
    """Point Fast DDS at the profile in ``environ`` (default ``os.environ``) for the processes
    started from it. Leaves a user's own profile, another RMW or a small /dev/shm alone.

    Returns the profile set, or None when nothing was changed.
    """
    environ = os.environ if environ is None else environ
    if any(environ.get(name) for name in PROFILE_VARIABLES):
        return None
    if environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") not in ("rmw_fastrtps_cpp",
                                                                     "rmw_fastrtps_dynamic_cpp"):
        return None
    try:
        if shutil.disk_usage(shm).free < MIN_FREE_SHM:
            return None
    except OSError:
        return None
    path = profile_path()
    for name in fast_dds_variables(environ):
        environ[name] = str(path)
    return path
