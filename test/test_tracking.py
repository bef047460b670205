"""Tracker on generated scenes, scored with motmetrics (run with -s to see the MOT figures).

Two kinds of ground truth: hand-built box sequences (the first scenes below) and people moving
in the world seen by a camera at 3–30 Hz (:mod:`pare_ros.scenes.motion`), for the frame-rate,
occlusion and crossing requirements."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List

import motmetrics as mm
import numpy as np
import pytest

from pare_ros.tracking import (BodyIdFormat, BoxKalmanFilter, Tracker, TrackState, base36,
                               iou_matrix, match)

FPS = 15.0
WIDTH, HEIGHT = 640, 480
METRICS = ["num_switches", "num_fragmentations", "num_false_positives", "num_misses", "mota", "idf1"]


@dataclass
class Frame:
    stamp: float
    gt_ids: List[int] = field(default_factory=list)
    gt_boxes: List[np.ndarray] = field(default_factory=list)
    det_boxes: List[np.ndarray] = field(default_factory=list)
    det_scores: List[float] = field(default_factory=list)


def person_box(cx, bottom, height):
    w = 0.4 * height
    return np.array([cx - w / 2, bottom - height, cx + w / 2, bottom], dtype=np.float64)


def clip(box):
    out = np.clip(box, [0, 0, 0, 0], [WIDTH, HEIGHT, WIDTH, HEIGHT])
    return out if out[2] - out[0] > 4 and out[3] - out[1] > 4 else None


class SceneBuilder:
    """Frames at FPS; people added with a trajectory and a per-frame detection rule."""

    def __init__(self, n_frames: int, seed: int = 0) -> None:
        self.frames = [Frame(i / FPS) for i in range(n_frames)]
        self.rng = np.random.default_rng(seed)

    def person(self, gt_id, cx, bottom, height, frames, detect=lambda i, box: 0.9):
        """cx, bottom, height: functions of the frame index; detect(i, box) → score or None."""
        for i in frames:
            box = clip(person_box(cx(i), bottom(i), height(i)))
            if box is None:
                continue
            f = self.frames[i]
            f.gt_ids.append(gt_id)
            f.gt_boxes.append(box)
            score = detect(i, box)
            if score is not None:
                noise = self.rng.normal(0, 0.02 * (box[3] - box[1]), 4)   # 2 % of the height
                noisy = clip(box + noise)
                if noisy is not None:
                    f.det_boxes.append(noisy)
                    f.det_scores.append(float(score))

    def false_positive(self, i, box, score=0.8):
        self.frames[i].det_boxes.append(np.asarray(box, float))
        self.frames[i].det_scores.append(score)


def run(frames, tracker, image_size=None):
    """Per frame: the tracker's views."""
    out = []
    for f in frames:
        boxes = np.array(f.det_boxes).reshape(-1, 4)
        out.append(tracker.update(boxes, np.array(f.det_scores), f.stamp, image_size))
    return out


def mot(frames, views, name, states=(TrackState.CONFIRMED, TrackState.COASTING)):
    """MOT metrics of the published tracks (confirmed + coasting) against the ground truth."""
    acc = mm.MOTAccumulator(auto_id=True)
    for f, vs in zip(frames, views):
        hyps = [v for v in vs if v.state in states]
        iou = iou_matrix(np.array(f.gt_boxes).reshape(-1, 4), np.array([v.box for v in hyps]).reshape(-1, 4))
        dist = np.where(iou >= 0.5, 1 - iou, np.nan)     # motmetrics' convention: NaN = no match
        acc.update(f.gt_ids, [v.track_id for v in hyps], dist)
    summary = mm.metrics.create().compute(acc, metrics=METRICS, name=name)
    row = summary.iloc[0].to_dict()
    print(f"\n{name:<28} switches {int(row['num_switches'])}  fragmentations {int(row['num_fragmentations'])}"
          f"  FP {int(row['num_false_positives'])}  misses {int(row['num_misses'])}"
          f"  MOTA {row['mota']:.3f}  IDF1 {row['idf1']:.3f}")
    return row


def ids_of(views, gt_frames, gt_id):
    """Track ids that covered ``gt_id`` (IoU ≥ 0.5), in order of appearance."""
    seen = []
    for f, vs in zip(gt_frames, views):
        if gt_id not in f.gt_ids:
            continue
        gt = f.gt_boxes[f.gt_ids.index(gt_id)]
        for v in vs:
            if v.published and v.state != TrackState.TENTATIVE and iou_matrix(gt[None], v.box[None])[0, 0] >= 0.5:
                if not seen or seen[-1] != v.track_id:
                    seen.append(v.track_id)
    return seen


# -------------------------------------------------------------------------------- scenes
def crossing_scene(seed=0):
    """A (near, big) walks left→right in front of B (far, smaller) walking right→left. While
    they overlap, B's detector score drops to 0.3 and, when fully behind A, B is not detected."""
    n = 60
    s = SceneBuilder(n, seed)
    cx_a = lambda i: 100 + 440 * i / (n - 1)
    cx_b = lambda i: 540 - 440 * i / (n - 1)

    def detect_b(i, box):
        gap = abs(cx_a(i) - cx_b(i))
        return None if gap < 30 else 0.3 if gap < 60 + 40 else 0.85

    s.person(1, cx_a, lambda i: 450, lambda i: 300, range(n))
    s.person(2, cx_b, lambda i: 380, lambda i: 200, range(n), detect_b)
    return s.frames


def leave_reenter_scene(seed=1, away_s=1.5):
    """One person walks out on the right, stays away ``away_s``, walks back in. The re-entry is
    a new ground-truth identity: REP-155 body IDs are valid only while tracked."""
    out_frames = 40
    away = int(away_s * FPS)
    n = out_frames + away + 40
    s = SceneBuilder(n, seed)
    s.person(1, lambda i: 300 + 12 * i, lambda i: 440, lambda i: 260, range(out_frames))
    back = out_frames + away
    s.person(2, lambda i: 700 - 12 * (i - back), lambda i: 440, lambda i: 260, range(back, n))
    return s.frames, back


def gap_scene(seed=2, gap=range(20, 25)):
    """One person; the detector misses frames ``gap`` (0.33 s < max_age)."""
    s = SceneBuilder(50, seed)
    s.person(1, lambda i: 120 + 8 * i, lambda i: 430, lambda i: 250, range(50),
             lambda i, box: None if i in gap else 0.9)
    return s.frames


def false_positive_scene(seed=3):
    """One real person, plus one- and two-frame high-score false positives elsewhere."""
    n = 60
    s = SceneBuilder(n, seed)
    s.person(1, lambda i: 150 + 4 * i, lambda i: 440, lambda i: 280, range(n))
    rng = np.random.default_rng(seed)
    for i in range(2, n, 4):
        x, y = rng.uniform(380, 560), rng.uniform(40, 200)
        box = [x, y, x + rng.uniform(30, 70), y + rng.uniform(80, 200)]
        s.false_positive(i, box, rng.uniform(0.6, 0.95))
        if i % 8 == 2:                                        # every other one lasts two frames
            s.false_positive(i + 1, np.add(box, 3), rng.uniform(0.6, 0.95))
    return s.frames


def partial_occlusion_scene(seed=4, occluded=range(20, 42)):
    """One person walks behind a low obstacle for 1.5 s (> max_age): the detector still sees
    them, with a low score (0.3)."""
    s = SceneBuilder(60, seed)
    s.person(1, lambda i: 100 + 7 * i, lambda i: 440, lambda i: 270, range(60),
             lambda i, box: 0.3 if i in occluded else 0.9)
    return s.frames


# --------------------------------------------------------------------------------- tests
def test_two_people_crossing_keep_their_ids():
    frames = crossing_scene()
    views = run(frames, Tracker(seed=0))
    row = mot(frames, views, "crossing")
    assert row["num_switches"] == 0 and row["num_false_positives"] == 0
    assert len(ids_of(views, frames, 1)) == 1 and len(ids_of(views, frames, 2)) == 1
    assert row["mota"] > 0.9 and row["idf1"] > 0.95


def test_reentry_after_max_age_gets_a_new_id():
    frames, back = leave_reenter_scene()
    # Without the image size the track coasts out of the picture for max_age (false positives).
    coasting_out = mot(frames, run(frames, Tracker(seed=0, max_age=0.5)), "leave, re-enter (no size)")
    tracker = Tracker(seed=0, max_age=0.5)
    views = run(frames, tracker, (WIDTH, HEIGHT))
    row = mot(frames, views, "leave and re-enter")
    assert row["num_false_positives"] < coasting_out["num_false_positives"]
    # The last clipped boxes at the edge are still published while the prediction leaves.
    assert row["num_false_positives"] <= 4
    first, second = ids_of(views, frames, 1), ids_of(views, frames, 2)
    assert len(first) == 1 and len(second) == 1 and second[0] > first[0]
    assert row["num_switches"] == 0
    # The first track was deleted while the person was away and reported as removed.
    removed = {r.track_id: r for r in tracker.pop_removed()}
    assert first[0] in removed and removed[first[0]].was_confirmed
    assert all(first[0] not in {v.track_id for v in vs} for vs in views[back:])
    assert tracker.pop_removed() == []


def test_coasting_keeps_the_id_through_a_short_gap():
    gap = range(20, 25)
    frames = gap_scene(gap=gap)
    views = run(frames, Tracker(seed=0, max_age=0.5))
    row = mot(frames, views, "short detection gap")
    assert len(ids_of(views, frames, 1)) == 1
    states = [views[i][0].state for i in gap]
    assert states == [TrackState.COASTING] * len(gap)
    assert all(views[i][0].detection_index is None for i in gap)
    assert views[gap[-1]][0].time_since_update == pytest.approx(len(gap) / FPS)
    assert views[gap[-1] + 1][0].state == TrackState.CONFIRMED
    # The coasting box follows the walk, so the gap costs nothing: no misses, no fragment.
    assert row["num_fragmentations"] == 0 and row["num_misses"] <= 2     # 2 = the tentative start
    # A gap longer than max_age ends the track; the person comes back with a new id.
    frames = gap_scene(gap=range(20, 31))
    views = run(frames, Tracker(seed=0, max_age=0.5))
    assert len(ids_of(views, frames, 1)) == 2


def test_false_positives_never_become_confirmed_tracks():
    frames = false_positive_scene()
    views = run(frames, Tracker(seed=0, min_hits=3))
    row = mot(frames, views, "false positives")
    assert row["num_false_positives"] == 0 and row["num_switches"] == 0
    confirmed = {v.track_id for vs in views for v in vs if v.state != TrackState.TENTATIVE}
    assert len(confirmed) == 1
    # They were seen, as tentative tracks that died on their first miss.
    tentative = {v.track_id for vs in views for v in vs if v.state == TrackState.TENTATIVE}
    assert len(tentative - confirmed) >= 10


def test_low_score_detections_continue_tracks_through_partial_occlusion():
    occluded = range(20, 42)
    frames = partial_occlusion_scene(occluded=occluded)
    views = run(frames, Tracker(seed=0))
    row = mot(frames, views, "partial occlusion (ByteTrack)")
    assert len(ids_of(views, frames, 1)) == 1 and row["num_switches"] == 0
    assert all(views[i][0].state == TrackState.CONFIRMED for i in occluded)
    assert row["num_fragmentations"] == 0
    # Ablation: without the low-score stage the track coasts, is LOST (not published) for
    # most of the 1.5 s and is re-found by its gate when the score recovers; with the old
    # 0.5 s max_age it is deleted and the person gets a new id. Low-score boxes alone never
    # start tracks.
    views = run(frames, Tracker(seed=0, low_score=0.5))
    mot(frames, views, "partial occlusion (1 stage)")
    lost = [i for i in occluded if views[i][0].state == TrackState.LOST]
    assert len(lost) >= len(occluded) - int(0.5 * FPS) - 1
    assert [v.track_id for v in views[occluded[-1] + 2]] == [1]
    views = run(frames, Tracker(seed=0, low_score=0.5, max_age=0.5))
    assert len(ids_of(views, frames, 1)) == 2
    assert not any(v.track_id > 1 for i in occluded for v in views[i] if v.state != TrackState.TENTATIVE)


def test_same_input_same_ids_and_boxes():
    frames = crossing_scene(seed=5) + [Frame(f.stamp + 4.0, f.gt_ids, f.gt_boxes, f.det_boxes, f.det_scores)
                                       for f in false_positive_scene(seed=6)]
    a, b = run(frames, Tracker(seed=7)), run(frames, Tracker(seed=7))
    flat = lambda views: [(v.track_id, v.body_id, int(v.state), v.detection_index, tuple(np.round(v.box, 9)))
                          for vs in views for v in vs]
    assert flat(a) == flat(b)
    c = run(frames, Tracker(seed=None))
    assert [t[0] for t in flat(c)] == [t[0] for t in flat(a)]      # same numeric ids regardless


def test_body_id_format():
    tracker = Tracker(seed=0)
    views = tracker.update([[10, 10, 60, 150], [100, 10, 150, 150]], [0.9, 0.9], 0.0)
    body_ids = [v.body_id for v in views]
    assert len(set(body_ids)) == 2
    for v in views:
        assert re.fullmatch(r"[a-z]{3}[0-9a-z]+", v.body_id) and v.body_id.endswith(base36(v.track_id))
    assert views[0].track_id == 1 and views[1].track_id == 2
    assert BodyIdFormat("cam1_", seed=0)(35) == "cam1_" + BodyIdFormat("", seed=0)(35)
    assert BodyIdFormat("", seed=0)(35).endswith("z") and base36(36) == "10" and base36(0) == "0"
    # Sessions differ between runs (os random); collisions have probability 26^-3 per pair.
    sessions = {BodyIdFormat().session for _ in range(20)}
    assert len(sessions) >= 15
    for bad in ("1cam", "cam-1", "_x", "a b"):
        with pytest.raises(ValueError):
            Tracker(id_prefix=bad)


def test_track_fields_states_and_reset():
    tracker = Tracker(seed=0, min_hits=3, max_age=0.5)
    box = np.array([100, 100, 160, 250.0])
    for k in range(3):
        (v,) = tracker.update(box[None] + 5 * k, [0.9], k * 0.1)
        assert v.hits == k + 1 and v.detection_index == 0
        assert v.state == (TrackState.CONFIRMED if k == 2 else TrackState.TENTATIVE)
    np.testing.assert_allclose(v.box, box + 10)
    assert v.age == pytest.approx(0.2) and v.time_since_update == 0 and v.score == pytest.approx(0.9)
    (v,) = tracker.update(np.zeros((0, 4)), [], 0.3)
    assert v.state == TrackState.COASTING and v.detection_index is None
    assert v.velocity[0] > 0 and v.box[0] > 110                      # predicted forward
    with pytest.raises(ValueError, match="older"):
        tracker.update(np.zeros((0, 4)), [], 0.2)
    tracker.reset()
    assert len(tracker) == 0 and [r.track_id for r in tracker.pop_removed()] == [1]
    (v,) = tracker.update(box[None], [0.9], 0.0)                     # stamps may restart
    assert v.track_id == 2                                           # ids never reused
    # Runtime parameter change (the node sets attributes): min_hits 1 confirms at once.
    tracker.min_hits = 1
    views = tracker.update(np.array([box, box + 300]), [0.9, 0.9], 0.1)
    assert [v.state for v in views] == [TrackState.CONFIRMED, TrackState.CONFIRMED]


def test_kalman_prediction_and_gated_matching():
    kf = BoxKalmanFilter([0, 0, 40, 100], 0.0)
    for k in range(1, 10):                                            # 60 px/s to the right
        kf.predict(k / 10)
        kf.update([6 * k, 0, 6 * k + 40, 100])
    predicted = kf.predict(0.9 + 0.4)
    np.testing.assert_allclose(predicted, [78, 0, 118, 100], atol=3)
    assert kf.velocity[0] == pytest.approx(60, abs=5)
    iou = np.array([[0.9, 0.35, 0.0], [0.8, 0.2, 0.0]])
    pairs, free_rows, free_cols = match(iou, 0.3)
    assert pairs == [(0, 1), (1, 0)] and free_rows == [] and free_cols == [2]
    pairs, free_rows, _ = match(iou, 0.5)
    assert pairs == [(0, 0)] and free_rows == [1]


# ------------------------------------------------------------------ world scenes, 3–30 Hz
from pare_ros.scenes import motion_scenes as ms                                # noqa: E402
from pare_ros.scenes.track_metrics import (confirmation_time, mot_summary,     # noqa: E402
                                           run_tracker, track_ids_of)

RATES = (3, 5, 10, 15, 30)


def noisy(seed):
    """3 % box noise, 5 % missed detections, 0.1 false positives per image."""
    return ms.DetectorModel(box_noise=0.03, miss_rate=0.05, false_positives=0.1, seed=seed)


@pytest.mark.parametrize("rate", RATES)
def test_walker_is_confirmed_within_a_second_at_any_rate(rate):
    # 1.4 m/s across the view at 4 m: 0.9 box widths per image at 3 Hz (IoU with the previous
    # box ≈ 0.05), which IoU-only association never matched.
    for seed in range(3):
        frames = ms.walker_scene().frames(rate, 2.5, noisy(seed), phase=0.37 * seed % 1)
        published = run_tracker(Tracker(seed=0), frames)
        t = confirmation_time(frames, published, 1)
        assert t is not None and t <= 1.0, (rate, seed, t)
        assert len(track_ids_of(frames, published, 1)) == 1


@pytest.mark.parametrize("rate", (5, 15))
def test_standing_person_hidden_for_1_5_s_keeps_the_id(rate):
    scene = ms.occlusion_scene(1.5)
    assert ms.hidden_time(scene) == pytest.approx(1.5, abs=0.02)
    for seed in range(2):
        frames = scene.frames(rate, 4.5, noisy(seed), phase=0.37 * seed % 1)
        tracker = Tracker(seed=0)
        views = [tracker.update(f.det_boxes, f.det_scores, f.stamp, (640, 480)) for f in frames]
        published = [[(v.track_id, v.box) for v in vs if v.state in (TrackState.CONFIRMED, TrackState.COASTING)]
                     for vs in views]
        ids = track_ids_of(frames, published, 1)
        assert len(ids) == 1, (rate, seed, ids)
        # While hidden the track is first COASTING with decaying confidence, then LOST: kept,
        # not published, confidence 0.
        hidden = [k for k, f in enumerate(frames) if f.visible[f.gt_ids.index(1)] < 0.35]
        mine = [[v for v in views[k] if v.track_id == ids[0]] for k in hidden]
        assert all(len(m) == 1 for m in mine)
        states = [m[0].state for m in mine]
        assert TrackState.LOST in states and states[-1] == TrackState.LOST
        coasting = [m[0].confidence for m in mine if m[0].state == TrackState.COASTING]
        assert all(a > b for a, b in zip(coasting, coasting[1:]))
        assert all(m[0].confidence == 0 and not m[0].published for m in mine if m[0].state == TrackState.LOST)


@pytest.mark.parametrize("rate", RATES)
def test_no_id_switch_when_people_cross(rate):
    for name, scene in ms.crossing_scenes().items():
        frames = scene.frames(rate, 4.0, noisy(1), phase=0.37)
        row = mot_summary(frames, run_tracker(Tracker(seed=0), frames))
        assert row["num_switches"] == 0, (rate, name, row)
        assert row["idf1"] > 0.7, (rate, name, row)


def test_a_track_matched_in_every_image_is_never_lost_however_slow_the_images():
    """A CPU node may process one image every 1-2 s (> max_coast): a person detected in every
    image stays CONFIRMED (published) instead of going through the LOST probation each time."""
    frames = ms.walker_scene(speed=0.5).frames(0.7, 7.0, ms.DetectorModel(box_noise=0.02, seed=0))
    tracker = Tracker(seed=0, min_hits=1)
    views = [tracker.update(f.det_boxes, f.det_scores, f.stamp, (640, 480)) for f in frames]
    assert len(frames) == 4 and all(len(v) == 1 for v in views)
    assert [v[0].state for v in views] == [TrackState.CONFIRMED] * 4
    assert len({v[0].track_id for v in views}) == 1


def test_a_false_positive_does_not_revive_a_lost_track():
    """A LOST track that takes one detection stays unpublished until the next image confirms
    it; an unconfirmed one is undone (the track keeps its earlier motion)."""
    tracker = Tracker(seed=0, min_hits=1, max_coast=0.3, max_age=3.0)
    box = np.array([300, 100, 360, 300.0])
    for k in range(10):                                              # standing, 10 Hz
        tracker.update(box[None], [0.9], k / 10)
    for k in range(10, 16):                                          # hidden 0.6 s
        (v,) = tracker.update(np.zeros((0, 4)), [], k / 10)
    assert v.state == TrackState.LOST
    before = v.box
    (v,) = tracker.update((box + [30, 10, 30, 10])[None], [0.9], 1.6)   # a box inside the gate
    assert v.state == TrackState.LOST and v.detection_index == 0 and not v.published
    (v,) = tracker.update(np.zeros((0, 4)), [], 1.7)
    assert v.state == TrackState.LOST and v.track_id == 1
    np.testing.assert_allclose(v.box, before, atol=1.0)                 # undone
    for t in (1.8, 1.9):                                             # the person is back
        (v,) = tracker.update(box[None], [0.9], t)
    assert v.state == TrackState.CONFIRMED and v.track_id == 1
