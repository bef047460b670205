"""The Fast DDS profile for camera-sized messages (``config/fastdds_large_images.xml``).

Used by the demo graph and the multi-process tests, which start every participant themselves;
on a robot the user exports ``FASTDDS_DEFAULT_PROFILES_FILE`` for the camera driver and the
node (docs/troubleshooting.md).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import MutableMapping, Optional

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
    environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    return path
