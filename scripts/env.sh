# Sourced by the scripts: activates the project environment made by bootstrap.sh.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PARE_ROS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pare_ros/venv}"
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if [ -f "$REPO/install/setup.bash" ]; then
  # colcon's setup scripts read unset variables; relax nounset around them.
  set +u
  # shellcheck disable=SC1091
  source "$REPO/install/setup.bash"
  set -u
fi
export PYTHONPATH="$REPO:$REPO/training${PYTHONPATH:+:$PYTHONPATH}"
