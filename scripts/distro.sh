# Sourced by bootstrap.sh, env.sh and test.sh: which ROS 2 distro's environment to use.
#   PARE_ROS_DISTRO  kilted (default) | jazzy
#   PARE_ROS_VENV    overrides the virtual environment's location
# Sets DISTRO, VENV, REQ_ROS, BUILD_BASE, INSTALL_BASE, LOG_BASE (REPO must be set).
DISTRO="${PARE_ROS_DISTRO:-kilted}"
_cache="${XDG_CACHE_HOME:-$HOME/.cache}/pare_ros"
case "$DISTRO" in
  kilted) VENV="${PARE_ROS_VENV:-$_cache/venv}"; REQ_ROS="$REPO/requirements-ros.txt"
          BUILD_BASE="$REPO/build"; INSTALL_BASE="$REPO/install"; LOG_BASE="$REPO/log" ;;
  jazzy)  VENV="${PARE_ROS_VENV:-$_cache/venv-jazzy}"; REQ_ROS="$REPO/requirements-ros-jazzy.txt"
          BUILD_BASE="$REPO/build-jazzy"; INSTALL_BASE="$REPO/install-jazzy"; LOG_BASE="$REPO/log-jazzy" ;;
  *) echo "PARE_ROS_DISTRO=$DISTRO is not supported: use kilted or jazzy" >&2; return 2 2>/dev/null || exit 2 ;;
esac
unset _cache
export PARE_ROS_DISTRO="$DISTRO"
