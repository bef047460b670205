#!/usr/bin/env bash
# Whole test suite: set up (first run only), then pytest over test/.
#   bash scripts/test.sh [--distro kilted|jazzy] [pytest arguments, e.g. -k parity]
# --distro (or PARE_ROS_DISTRO) picks the ROS 2 environment: kilted (default) or jazzy, each
# with its own virtual environment and colcon install (scripts/distro.sh).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--distro" ]; then
  [ $# -ge 2 ] || { echo "test.sh: --distro needs a value: kilted or jazzy" >&2; exit 2; }
  export PARE_ROS_DISTRO="$2"; shift 2
elif [[ "${1:-}" == --distro=* ]]; then
  export PARE_ROS_DISTRO="${1#--distro=}"; shift
fi
bash "$REPO/scripts/bootstrap.sh"
source "$REPO/scripts/env.sh"
export PYTHONPATH="$REPO/test:$PYTHONPATH"
cd "$REPO"
echo "[test] ROS 2 $PARE_ROS_DISTRO ($VENV, $(basename "$INSTALL_BASE")/)"
python -m pytest test -ra --timeout=900 "$@"
