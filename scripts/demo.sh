#!/usr/bin/env bash
# Main job: set up (first run only), then estimate the bodies in a real photograph that
# scikit-image ships and write results.json, results.npz and overlay.png to out/demo/.
# Uses the official files in model/ when present; otherwise untrained weights and the
# synthetic body model, with a loud warning that the results are meaningless.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/bootstrap.sh"
source "$REPO/scripts/env.sh"
OUT="${1:-$REPO/out/demo}"
python -m pare_ros infer skimage:astronaut --allow-untrained --out "$OUT"
echo "[demo] outputs in $OUT"
