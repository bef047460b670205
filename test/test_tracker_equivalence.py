"""pare_ros.tracking's Tracker / BoxKalmanBatch after the per-call overhead cuts (per-row Python
floats for a handful of tracks) against the array formulation they replaced, loaded from git
revision ``REFERENCE_REV``: on random scenes (people entering, crossing, hidden, leaving; false
positives; low scores; irregular frame intervals; resets) every view, every removal and the
filter state are the same, bit for bit, for few tracks and for many."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pare_ros.tracking import Tracker
from pare_ros.tracking.kalman import SCALAR_ROWS, BoxKalmanBatch

REFERENCE_REV = "eff0ea2"          # the last commit with the former array formulation
ROOT = Path(__file__).resolve().parents[1]
FILES = ("__init__.py", "tracker.py", "kalman.py", "association.py", "ids.py")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """tracker.py, kalman.py, association.py, ids.py at REFERENCE_REV as a package of their own."""
    pkg = tmp_path_factory.mktemp("reference") / "reference_tracking"
    pkg.mkdir()
    for name in FILES:
        try:
            text = "" if name == "__init__.py" else subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{REFERENCE_REV}:pare_ros/tracking/{name}"],
                check=True, capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            pytest.skip(f"git revision {REFERENCE_REV} not available")
        (pkg / name).write_text(text)
    sys.path.insert(0, str(pkg.parent))
    try:
        yield importlib.import_module("reference_tracking.tracker"), importlib.import_module("reference_tracking.kalman")
    finally:
        sys.path.remove(str(pkg.parent))
        for name in [m for m in sys.modules if m.startswith("reference_tracking")]:
            del sys.modules[name]


def _scene(rng, people, frames):
    """Detections per frame: (boxes [K,4], scores [K], stamp). People walk at random speeds and
    sizes, enter late or leave early, are missed (hidden) for runs of frames, sometimes come
    with a low score; false positives and duplicate boxes now and then."""
    start = rng.integers(0, frames // 3, people)
    stop = np.minimum(frames, start + rng.integers(frames // 4, frames, people))
    x0, y0 = rng.uniform(-100, 740, people), rng.uniform(150, 330, people)
    vx, vy = rng.normal(0, 120, people), rng.normal(0, 20, people)
    h0, vh = rng.uniform(60, 320, people), rng.normal(0, 15, people)
    hidden = np.zeros((people, frames), bool)
    for p in range(people):
        for _ in range(rng.integers(0, 3)):
            a = rng.integers(0, frames)
            hidden[p, a:a + rng.integers(1, 25)] = True
    stamp = 0.0
    for f in range(frames):
        stamp += rng.choice([1 / 30, 1 / 15, 1 / 5, 1 / 3, 0.0, 1.2], p=[0.3, 0.35, 0.15, 0.1, 0.05, 0.05])
        boxes, scores = [], []
        for p in range(people):
            if not start[p] <= f < stop[p] or hidden[p, f]:
                continue
            h = max(h0[p] + vh[p] * stamp, 8.0)
            cx, cy = x0[p] + vx[p] * stamp, y0[p] + vy[p] * stamp
            boxes.append(np.array([cx - 0.2 * h, cy - h / 2, cx + 0.2 * h, cy + h / 2]) + rng.normal(0, 0.02 * h, 4))
            scores.append(rng.choice([rng.uniform(0.5, 1.0), rng.uniform(0.1, 0.5), rng.uniform(0, 0.1)],
                                     p=[0.8, 0.15, 0.05]))
        for _ in range(rng.poisson(0.3)):                                    # false positives
            c, h = rng.uniform(0, 640, 2), rng.uniform(20, 200)
            boxes.append(np.array([c[0], c[1], c[0] + 0.4 * h, c[1] + h]))
            scores.append(rng.uniform(0.3, 0.9))
        if boxes and rng.random() < 0.05:                                    # a duplicate detection
            boxes.append(boxes[0] + rng.normal(0, 3, 4))
            scores.append(scores[0] * 0.9)
        order = rng.permutation(len(boxes))
        yield np.array(boxes).reshape(-1, 4)[order], np.array(scores)[order], stamp


def _same_views(ours, want):
    assert len(ours) == len(want)
    for a, b in zip(ours, want):
        for field in ("track_id", "body_id", "age", "time_since_update", "score", "hits", "detection_index",
                      "confidence"):
            assert getattr(a, field) == getattr(b, field), field
        assert int(a.state) == int(b.state)
        for field in ("box", "filtered_box", "velocity"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("people", [1, 2, 3, 5, 8, 14])
def test_tracker_equals_the_former_array_formulation(reference, people):
    ref_tracker, _ = reference
    rng = np.random.default_rng(people)
    for trial in range(4):
        options = [dict(seed=1), dict(seed=2, min_hits=1, gate=0.0),
                   dict(seed=3, max_coast=0.2, tentative_misses=0, new_track_score=0.7),
                   dict(seed=4, id_prefix="cam1_", max_age=0.8)][trial]
        ours, want = Tracker(**options), ref_tracker.Tracker(**options)
        image_size = None if trial == 1 else (640, 480)
        for f, (boxes, scores, stamp) in enumerate(_scene(rng, people, 150)):
            if f == 100 and trial == 2:
                ours.reset(), want.reset()
            _same_views(ours.update(boxes, scores, stamp, image_size), want.update(boxes, scores, stamp, image_size))
            assert [vars(r) for r in ours.pop_removed()] == [vars(r) for r in want.pop_removed()]
            np.testing.assert_array_equal(ours._kf.x, want._kf.x)
            np.testing.assert_array_equal(ours._kf.cov, want._kf.cov)
            np.testing.assert_array_equal(ours._kf.stamp, want._kf.stamp)


@pytest.mark.parametrize("rows", [1, 2, SCALAR_ROWS, SCALAR_ROWS + 1, 12])
def test_kalman_batch_equals_the_former_array_formulation(reference, rows):
    """Either side of SCALAR_ROWS (the per-row and the array form), with boxes below MIN_SIZE,
    zero and negative time steps, subsets of rows."""
    _, ref_kalman = reference
    rng = np.random.default_rng(rows)
    ours, want = BoxKalmanBatch(), ref_kalman.BoxKalmanBatch()
    z = np.c_[rng.uniform(0, 640, (rows, 2)), rng.choice([0.3, 20.0, 150.0], (rows, 2))]
    ours.add(z, 0.0), want.add(z, 0.0)
    stamp = 0.0
    for step in range(40):
        stamp += rng.choice([0.0, 1 / 30, 0.2, 1.5])
        subset = sorted(rng.choice(rows, rng.integers(1, rows + 1), replace=False).tolist())
        for kf in (ours, want):
            kf.predict(stamp if step % 5 else stamp - 0.1, subset if step % 3 == 0 else None)
        measured = np.c_[rng.uniform(0, 640, (len(subset), 2)), rng.choice([0.5, 30.0, 200.0], (len(subset), 2))]
        np.testing.assert_array_equal(ours.update(subset, measured), want.update(subset, measured))
        np.testing.assert_array_equal(ours.boxes(), want.boxes())
        np.testing.assert_array_equal(ours.boxes(subset), want.boxes(subset))
        np.testing.assert_array_equal(ours.gating_distance(subset, measured), want.gating_distance(subset, measured))
        for a, b in ((ours.x, want.x), (ours.cov, want.cov), (ours.stamp, want.stamp)):
            np.testing.assert_array_equal(a, b)


def test_kalman_batch_without_measurement_noise_is_as_before(reference):
    """measurement_std = 0: S = var + r can be 0 (NumPy's x/0 semantics, kept)."""
    _, ref_kalman = reference
    ours, want = BoxKalmanBatch(measurement_std=0.0), ref_kalman.BoxKalmanBatch(measurement_std=0.0)
    z = np.array([[100.0, 100.0, 40.0, 100.0], [300.0, 120.0, 30.0, 80.0]])
    with np.errstate(divide="ignore", invalid="ignore"):
        for kf in (ours, want):
            kf.add(z, 0.0)
        np.testing.assert_array_equal(ours.gating_distance([0, 1], z + 1), want.gating_distance([0, 1], z + 1))
        np.testing.assert_array_equal(ours.update([0, 1], z + 1), want.update([0, 1], z + 1))
        for a, b in ((ours.x, want.x), (ours.cov, want.cov)):
            np.testing.assert_array_equal(a, b)
