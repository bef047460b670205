"""pare_training.export: checkpoint → ONNX (checked against PyTorch with ONNX Runtime) → the
TensorRT engines where the node looks for them. TensorRT cannot be installed here, so the engine
step reports its build command; the builder itself is tested in test_backends.py with a fake."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import write_mmhuman3d_pth
from pare_ros.backends.onnx_export import read_metadata
from pare_ros.backends.select import default_engine_path
from pare_ros.model_files import sha256_file
from pare_ros.network import PARE
from pare_training.export import export, main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(3)
    model = PARE()   # fresh random weights: different from the untrained default (seed 0)
    return write_mmhuman3d_pth(model.state_dict(), tmp_path_factory.mktemp("ckpt") / "pare_mm.pth")


def test_export_checks_onnxruntime_and_reports_engine_commands(checkpoint, tmp_path):
    report = export(checkpoint, tmp_path, "pare_mm", precisions=("fp16", "fp32"), max_batch=4)
    onnx_path = tmp_path / "pare_mm.onnx"
    assert report["onnx"] == str(onnx_path) and report["onnx_sha256"] == sha256_file(onnx_path)
    assert read_metadata(onnx_path)["checkpoint_sha256"] == sha256_file(checkpoint)
    differences = report["onnxruntime_vs_pytorch_max_abs"]
    assert set(differences) == {"pred_pose", "pred_shape", "pred_cam", "pred_segm_mask"}
    assert all(differences[k] <= 1e-4 for k in ("pred_pose", "pred_shape", "pred_cam")), differences
    assert 0 < differences["pred_segm_mask"] <= 1e-2
    assert report["onnxruntime_ok"]
    for precision, engine in zip(("fp16", "fp32"), report["engines"]):
        assert not engine["built"] and "tensorrt" in engine["reason"]
        assert str(default_engine_path(onnx_path, precision, 4)) in engine["command"]
        assert f"--precision {precision} --max-batch 4" in engine["command"]
    assert json.loads((tmp_path / "pare_mm.export.json").read_text()) == report


def test_export_cli_errors(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "missing.pth"), "--out-dir", str(tmp_path)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2


def test_export_cli_fails_beyond_tolerance(checkpoint, tmp_path, capsys):
    """A zero tolerance cannot be met by two float32 implementations: exit 1, said clearly."""
    assert main(["--checkpoint", str(checkpoint), "--out-dir", str(tmp_path), "--tolerance", "0"]) == 1
    assert "differs from PyTorch beyond the tolerance" in capsys.readouterr().err
