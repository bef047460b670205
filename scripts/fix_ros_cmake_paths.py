"""Rewrite the wheel builder's Python paths baked into the ROS wheels' CMake files.

The PyPI ROS 2 wheels ship CMake export files that name the build machine's interpreter
(``/opt/python/cp311-cp311/...``); CMake then stops with "Imported target ... includes
non-existent path". This points them at the interpreter of the given virtual environment.
Idempotent.

Usage: python fix_ros_cmake_paths.py VENV
"""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

BUILDER_INCLUDE = "/opt/python/cp311-cp311/include/python3.11"
BUILDER_PURELIB = "/opt/python/cp311-cp311/lib/python3.11/site-packages"


def main(venv: str) -> int:
    include = sysconfig.get_paths()["include"]
    purelib = sysconfig.get_paths()["purelib"]
    changed = 0
    for cmake_file in Path(venv, "share").rglob("*.cmake"):
        text = cmake_file.read_text(errors="surrogateescape")
        if BUILDER_INCLUDE not in text and BUILDER_PURELIB not in text:
            continue
        text = text.replace(BUILDER_INCLUDE, include).replace(BUILDER_PURELIB, purelib)
        cmake_file.write_text(text, errors="surrogateescape")
        changed += 1
    print(f"fix_ros_cmake_paths: {changed} file(s) rewritten (include={include})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
