"""scripts/precision_accuracy.py: its metrics on constructed differences (the fp16 runs
themselves take ~15 s per crop on a CPU and are a benchmark, not a test)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "precision_accuracy.py"
spec = importlib.util.spec_from_file_location("precision_accuracy", SCRIPT)
precision = importlib.util.module_from_spec(spec)
spec.loader.exec_module(precision)


def test_compare_separates_translation_from_pose():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(3, 24, 3))
    rot = Rotation.random(3 * 24, random_state=1).as_matrix().reshape(3, 24, 3, 3)
    shifted = joints + np.array([0.0, 0.0, 0.02])                  # whole body 2 cm further
    r = precision.compare(joints, shifted, rot, rot)
    assert np.isclose(r["camera_frame_mm"]["mean"], 20.0) and np.isclose(r["camera_frame_mm"]["max"], 20.0)
    assert r["root_relative_mm"]["max"] < 1e-9 and r["rotation_deg"]["max"] < 1e-4
    bent = joints.copy()
    bent[1, 5] += [0.003, 0.004, 0.0]                                 # one joint 5 mm off
    turn = Rotation.from_rotvec([0.0, 0.0, np.radians(3.0)]).as_matrix()
    rot2 = rot.copy()
    rot2[2, 7] = rot[2, 7] @ turn
    r = precision.compare(joints, bent, rot, rot2)
    assert np.isclose(r["root_relative_mm"]["max"], 5.0)
    assert np.isclose(r["root_relative_mm"]["mean"], 5.0 / (3 * 24))
    assert np.isclose(r["rotation_deg"]["max"], 3.0) and r["people"] == 3
    assert np.allclose(r["per_person_root_relative_mean_mm"], [0.0, 5.0 / 24, 0.0])


def test_jittered_boxes_keep_the_first_and_stay_near_it():
    box = np.array([100.0, 50.0, 300.0, 450.0])
    boxes = precision.jittered_boxes(box, 6)
    assert boxes.shape == (6, 4) and np.array_equal(boxes[0], box)
    sizes = (boxes[:, 2:] - boxes[:, :2]) / (box[2:] - box[:2])
    assert np.all((sizes > 0.89) & (sizes < 1.11))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 - (box[:2] + box[2:]) / 2
    assert np.all(np.abs(centres) <= 0.1 * (box[2:] - box[:2]) + 1e-9)
    assert not np.array_equal(boxes[1], boxes[2])


def test_autocast_network_returns_float32_in_both_precisions():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)

        def forward(self, x):
            y = self.linear(x)
            return {name: y for name in precision.OUTPUT_NAMES}

    x = torch.randn(2, 4)
    full, half = precision.AutocastNetwork(Tiny(), False), precision.AutocastNetwork(Tiny(), True)
    half.model = full.model
    a, b = full(x), half(x)
    assert all(v.dtype == torch.float32 for v in (*a.values(), *b.values()))
    diff = (a["pred_pose"] - b["pred_pose"]).abs().max().item()
    assert 0 < diff < 1e-2          # really computed in float16, and close
