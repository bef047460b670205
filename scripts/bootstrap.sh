#!/usr/bin/env bash
# Idempotent set-up of everything pare_ros needs on a machine that has only Python 3.11,
# gcc and cmake: a virtual environment with the pinned dependencies, the ROS 2 wheels
# (plus the CMake path fix they need), an editable install of the library and a colcon
# build of the ROS package. Re-running it only redoes what changed.
#
#   PARE_ROS_VENV   where the virtual environment lives (default: ~/.cache/pare_ros/venv).
#                   It must lie outside the repository: CMake refuses generated message targets
#                   whose include paths (numpy's, inside the venv) lie in the source tree.
#   PARE_ROS_SKIP_ROS=1   skip the ROS wheels and colcon build (library-only use)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PARE_ROS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pare_ros/venv}"
PY="${PYTHON:-python3}"
step() { printf '\n\033[1m[bootstrap] %s\033[0m\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi
# colcon must not discover the ROS packages that the wheels put inside the venv.
touch "$VENV/COLCON_IGNORE"
VPY="$VENV/bin/python"

stamp="$VENV/.pare_ros_deps.sha256"
want="$(cat "$REPO/requirements.txt" "$REPO/requirements-ros.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "installing pinned Python dependencies (torch 2.13.0 CPU, smplx, onnxruntime, ...)"
  "$VPY" -m pip install --progress-bar on -q --upgrade "pip<26" "setuptools<80" wheel
  # torch alone first, so the resolver can never fall back to a multi-GB CUDA build.
  "$VPY" -m pip install --progress-bar on "$(grep -E '^torch==' "$REPO/requirements.txt")"
  "$VPY" -m pip install --progress-bar on -r "$REPO/requirements.txt"
  if [ "${PARE_ROS_SKIP_ROS:-0}" != 1 ]; then
    step "installing ROS 2 Kilted wheels"
    "$VPY" -m pip install --progress-bar on -r "$REPO/requirements-ros.txt"
  fi
  # torch or another package may have raised setuptools; colcon-core needs <80.
  "$VPY" -m pip install -q "setuptools<80"
  echo "$want" > "$stamp"
else
  step "dependencies up to date ($VENV)"
fi

if [ "${PARE_ROS_SKIP_ROS:-0}" != 1 ]; then
  step "fixing CMake paths of the ROS wheels"
  "$VPY" "$REPO/scripts/fix_ros_cmake_paths.py" "$VENV"
  step "colcon build of the pare_ros package (messages + node)"
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
  base_paths=("$REPO")
  packages=(pare_ros)
  if ! "$VPY" -c "import tf2_msgs.msg" 2>/dev/null; then
    # The PyPI wheels lack tf2_msgs; build the one message /tf needs from its definition.
    base_paths+=("$REPO/ros_compat/tf2_msgs")
    packages+=(tf2_msgs)
  fi
  (cd "$REPO" && colcon build --base-paths "${base_paths[@]}" --packages-select "${packages[@]}" \
      --event-handlers console_cohesion- status- summary+ \
      --cmake-args -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF)
fi
step "done"
