"""scripts/gpu_check.sh --dry-run: the GPU acceptance script keeps working on a CPU-only machine
(every section runs on the CPU with a stand-in network, or says why it is skipped)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the dry run is the CPU-only mode")
def test_gpu_check_dry_run_runs_every_section(tmp_path):
    run = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    sections = report["sections"]
    assert report["dry_run"] and set(sections) == {"tests", "network", "crops", "smpl", "pipeline",
                                                     "precision", "memory"}
    assert all(s["status"] == "ok" for n, s in sections.items() if n != "memory"), sections
    assert sections["memory"]["status"].startswith("skipped: needs CUDA")
    assert sections["network"]["fp16 autocast eager"] == "skipped: needs CUDA"
    assert sections["crops"]["1"]["max_grey_levels"] <= 1.0
    assert sections["smpl"]["1"]["joints_only_joints49_vs_cpu_full_m"] <= 1e-6
    assert sections["pipeline"]["1"]["batched"][0] > 0
