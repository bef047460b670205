#!/usr/bin/env bash
# Whole test suite: set up (first run only), then pytest over test/.
# Extra arguments go to pytest (e.g. -k parity).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/bootstrap.sh"
source "$REPO/scripts/env.sh"
export PYTHONPATH="$REPO/test:$PYTHONPATH"
cd "$REPO"
python -m pytest test -ra --timeout=900 "$@"
