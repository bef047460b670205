#!/usr/bin/env bash
# Idempotent set-up of everything pare_ros needs on a machine that has only Python 3.11,
# gcc and cmake: a virtual environment with the pinned dependencies, the ROS 2 wheels
# (plus the CMake path fix they need), and a colcon build of the ROS package (plus the
# ros_compat/ stand-ins for interface packages the wheels lack). Re-running it only redoes
# what changed. (On a robot with apt ROS 2 none of this is needed: docs/install.md.)
#
#   PARE_ROS_DISTRO  kilted (default) | jazzy: which ROS 2 wheels. Each distro has its own
#                    virtual environment and colcon dirs: kilted ~/.cache/pare_ros/venv,
#                    build/ install/ log/; jazzy ~/.cache/pare_ros/venv-jazzy, build-jazzy/
#                    install-jazzy/ log-jazzy/. (The two wheel sets share distribution names,
#                    e.g. ros-rclpy, so they cannot share one environment.)
#   PARE_ROS_VENV    where the virtual environment lives (default: per distro, above).
#                    It must lie outside the repository: CMake refuses generated message targets
#                    whose include paths (numpy's, inside the venv) lie in the source tree.
#   PARE_ROS_SKIP_ROS=1   skip the ROS wheels and colcon build (library-only use)
# The heavy non-ROS wheels (torch, onnxruntime, scipy, ...) are the same pins for both distros;
# pip's cache (~/.cache/pip) serves the second environment without downloading them again.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=distro.sh
source "$REPO/scripts/distro.sh" || exit 2   # PARE_ROS_DISTRO -> VENV, REQ_ROS, BUILD_BASE, INSTALL_BASE, LOG_BASE
PY="${PYTHON:-python3}"
step() { printf '\n\033[1m[bootstrap %s] %s\033[0m\n' "$DISTRO" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  echo "$DISTRO" > "$VENV/.pare_ros_distro"
fi
made_for="$(cat "$VENV/.pare_ros_distro" 2>/dev/null || echo kilted)"
if [ "$made_for" != "$DISTRO" ]; then
  echo "bootstrap: $VENV holds the ROS 2 $made_for wheels, but PARE_ROS_DISTRO=$DISTRO;" \
       "unset PARE_ROS_VENV (each distro has its own default) or point it at another folder" >&2
  exit 2
fi
# colcon must not discover the ROS packages that the wheels put inside the venv.
touch "$VENV/COLCON_IGNORE"
VPY="$VENV/bin/python"

stamp="$VENV/.pare_ros_deps.sha256"
want="$(cat "$REPO/requirements.txt" "$REQ_ROS" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "installing pinned Python dependencies (torch 2.13.0 CPU, smplx, onnxruntime, ...)"
  "$VPY" -m pip install --progress-bar on -q --upgrade "pip<26" "setuptools<80" wheel
  # torch alone first, so the resolver can never fall back to a multi-GB CUDA build.
  "$VPY" -m pip install --progress-bar on "$(grep -E '^torch==' "$REPO/requirements.txt")"
  "$VPY" -m pip install --progress-bar on -r "$REPO/requirements.txt"
  if [ "${PARE_ROS_SKIP_ROS:-0}" != 1 ]; then
    step "installing ROS 2 $DISTRO wheels ($(basename "$REQ_ROS"))"
    "$VPY" -m pip install --progress-bar on -r "$REQ_ROS"
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
  step "colcon build of the pare_ros package (messages + node) into $(basename "$INSTALL_BASE")/"
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
  base_paths=("$REPO")
  packages=(pare_ros)
  # Every ros_compat/<pkg> whose Python module the wheels lack (checked without this
  # repository's install space on the path) is built from its public definition.
  for dir in "$REPO"/ros_compat/*/; do
    [ -f "$dir/package.xml" ] || continue
    name="$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$dir/package.xml" | head -n1)"
    if ! env -u PYTHONPATH "$VPY" -c "import $name" 2>/dev/null; then
      base_paths+=("${dir%/}")
      packages+=("$name")
    fi
  done
  echo "packages: ${packages[*]}"
  (cd "$REPO" && colcon --log-base "$LOG_BASE" build --base-paths "${base_paths[@]}" \
      --packages-select "${packages[@]}" --build-base "$BUILD_BASE" --install-base "$INSTALL_BASE" \
      --event-handlers console_cohesion- status- summary+ \
      --cmake-args -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF)
fi
step "done"
