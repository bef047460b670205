# Sourced by the scripts: activates the project environment made by bootstrap.sh for
# PARE_ROS_DISTRO (kilted, the default, or jazzy; see scripts/distro.sh).
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=distro.sh
source "$REPO/scripts/distro.sh" || return 2
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if [ -f "$INSTALL_BASE/setup.bash" ]; then
  # colcon's setup scripts read unset variables; relax nounset around them.
  _nounset=0; case $- in *u*) _nounset=1 ;; esac
  set +u
  # shellcheck disable=SC1091
  source "$INSTALL_BASE/setup.bash"
  [ "$_nounset" = 1 ] && set -u
  unset _nounset
fi
export PYTHONPATH="$REPO:$REPO/training${PYTHONPATH:+:$PYTHONPATH}"
