#!/usr/bin/env bash
# GPU acceptance check, one command (≤ 8 minutes on the H200): bash scripts/gpu_check.sh
#   --dry-run   on a CPU-only machine: every section that can run, tiny counts (CI)
#   --prepare   here, before a device run: fetch the wheels the GPU machine lacks into .whl/
#               (smplx) and write the fixture's inputs to .gpu_carry/ (the 85 MB fixture cannot
#               travel); then run with carry [".whl", ".gpu_carry"] (see .library/device/README.md)
# Other arguments go to scripts/gpu_check.py (--sections, --frames, --out; $OUT is the default).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    grep -qx '/.gpu_carry/' .git/info/exclude 2>/dev/null || echo '/.gpu_carry/' >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl smplx==0.1.28
    mkdir -p .gpu_carry
    python3 - <<'PY'
import os, torch
from pathlib import Path
fixture = Path(os.environ.get("PARE_ROS_FIXTURES", "../shared/fixtures")) / "pare_hrnet_w32_reference_outputs.pt"
if fixture.is_file():
    torch.save(torch.load(fixture, map_location="cpu", weights_only=True)["input"].clone(), ".gpu_carry/fixture_inputs.pt")
    print("wrote .gpu_carry/fixture_inputs.pt")
else:
    print(f"no fixture at {fixture}: the precision section runs on real crops only")
PY
    exit 0
fi

PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
# Carried wheels (the GPU machine has no registry): installed once into /tmp, only if needed.
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PYTHON" -c "import smplx" 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/pare_gpu_site .whl/*.whl
    export PYTHONPATH=/tmp/pare_gpu_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
exec timeout 480 "$PYTHON" scripts/gpu_check.py "$@"
