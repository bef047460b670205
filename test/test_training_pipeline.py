"""End-to-end training pipeline (pare_training.pipeline / evaluate) on tiny synthetic data, CPU.

The run: 4 synthetic images (synthetic stand-in body model), evaluation of the fresh network,
10 training steps (batch 2, lr 1e-3, no augmentation, no part term), evaluation of the trained
checkpoint, ONNX export, TensorRT skipped when it does not import. Evaluation is on the
training images (a fit check, not generalisation). Measured on 2 CPU cores: MPJPE 552 → 476 mm
(−76), PA-MPJPE 352 → 319 (−33), PVE 432 → 391; ≈35 s (with seed 1: MPJPE −19, PA-MPJPE −34).
The test (seed 0) asserts that MPJPE and PA-MPJPE both drop by ≥ 10 mm.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pare_ros.backends.onnx_export import read_metadata
from pare_ros.model_files import sha256_file
from pare_ros.network import PARE, load_network
from pare_training.evaluate import LSP14_NAMES, evaluate
from pare_training.pipeline import run_pipeline

MARGIN_MM = 10.0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    lines = []
    report = run_pipeline(out, synthetic=4, eval_count=0, steps=10, batch_size=2, lr=1e-3,
                          augment=False, part_supervision=False, eval_batch_size=4,
                          log=lines.append)
    return out, report, "\n".join(lines)


def test_pipeline_produces_artefacts_and_lowers_the_error(run):
    out, report, text = run
    ckpt, onnx_path = Path(report["checkpoint"]), Path(report["onnx"])
    assert ckpt.is_file() and onnx_path.is_file()
    assert isinstance(load_network(ckpt), PARE)
    assert read_metadata(onnx_path)["checkpoint_sha256"] == sha256_file(ckpt)

    before = json.loads((out / "eval_initial" / "metrics.json").read_text())
    after = json.loads((out / "eval_trained" / "metrics.json").read_text())
    import cv2

    plot = cv2.imread(str(out / "eval_trained" / "error_vs_visibility.png"))
    assert plot is not None and plot.shape[0] > 100, "error-vs-visibility plot missing"
    assert before["frames"] == after["frames"] == 4
    for k in ("mpjpe", "pa_mpjpe"):
        assert after["mean"][k] < before["mean"][k] - MARGIN_MM, (k, before["mean"], after["mean"])
    # internal consistency of the report
    for m in (before, after):
        frames = m["per_frame"]
        for k in ("mpjpe", "pa_mpjpe", "pve"):
            assert np.isclose(np.mean([f[k] for f in frames]), m["mean"][k], rtol=1e-5)
        assert [r["joint"] for r in m["per_joint"]] == list(LSP14_NAMES)
        assert np.isclose(np.mean([r["mpjpe"] for r in m["per_joint"]]), m["mean"]["mpjpe"],
                          rtol=1e-5)
        assert m["mean"]["pa_mpjpe"] <= m["mean"]["mpjpe"] + 1e-6
        assert sum(b["count"] for b in m["visibility_bins"]) == 4
        assert all(0.0 <= f["mean_visibility"] <= 1.0 for f in frames)
        assert m["occluded_subset"] is None            # synthetic data has no occlusion flags

    entry = yaml.safe_load((out / "model_manifest_entry.yaml").read_text())
    assert entry["checkpoint"]["sha256"] == sha256_file(ckpt)
    assert entry["onnx"]["sha256"] == sha256_file(onnx_path)
    assert entry["use"]["or_set_node_parameters"]["model.onnx_path"] == str(onnx_path.resolve())
    assert entry["metrics_mm"]["trained"]["mpjpe"] == pytest.approx(after["mean"]["mpjpe"], abs=0.01)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert entry["engine"]["built"] is False and "tensorrt" in entry["engine"]["reason"]
        assert "tensorrt_engine build" in entry["engine"]["build_command"]
    assert "pipeline report" in text and "mpjpe" in text


def test_evaluate_reports_the_occluded_subset(run, tmp_path):
    out, report, _ = run
    src = out / "synthetic" / "synthetic.npz"
    with np.load(src, allow_pickle=True) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["meta"] = np.array({"occluded": np.array([True, False, True, False])}, dtype=object)
    data = tmp_path / "occ.npz"
    np.savez(data, **arrays)
    m = evaluate(out / "init.pth", data, out / "synthetic", model_dir=out / "synthetic_model",
                 batch_size=4, trust_pickle=True, out_dir=tmp_path / "eval")
    assert (tmp_path / "eval" / "metrics.json").is_file()
    occ = m["occluded_subset"]
    assert occ["frames"] == 2
    frames = m["per_frame"]
    assert occ["mpjpe"] == pytest.approx((frames[0]["mpjpe"] + frames[2]["mpjpe"]) / 2)
    # same weights and data as the pipeline's initial evaluation → same numbers
    before = json.loads((out / "eval_initial" / "metrics.json").read_text())
    assert m["mean"]["mpjpe"] == pytest.approx(before["mean"]["mpjpe"], rel=1e-4)
