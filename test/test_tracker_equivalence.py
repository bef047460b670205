"""The per-call-overhead rewrite of the tracker (pare_ros.tracking.tracker, .kalman,
.association, .ids) changes no result, bit for bit: against those modules as they were before
it (loaded from git at ``REFERENCE_COMMIT`` as a separate package), long random sequences give
identical views (ids, body ids, states, ages, boxes, filtered boxes, velocities, scores, hits,
detection indices, confidences), removed tracks, filter states, covariances and stamps, and the
same errors. The sequences mix 1–8 people walking (in and out of the image), missed and
low-score detections, false positives, people hidden long enough to be LOST and re-found,
gaps, repeated stamps, image_size given or None, inputs as lists or float32, resets and several
tracker settings. Skipped without git history."""
from __future__ import annotations

import numpy as np
import pytest

import git_modules
from pare_ros.tracking import association, kalman, tracker

REFERENCE_COMMIT = "2f6e58a"          # the last commit before the rewrite
MODULES = ("tracker", "kalman", "association", "ids")   # tracker imports the others relatively
FIELDS = ("track_id", "body_id", "state", "age", "time_since_update", "score", "hits",
          "detection_index", "confidence", "published")
ARRAYS = ("box", "filtered_box", "velocity")
SETTINGS = [dict(),
            dict(min_hits=1),
            dict(min_hits=2, max_coast=0.3, max_age=3.0, tentative_misses=2),
            dict(gate=0.0, new_track_score=0.7),
            dict(min_hits=1, low_score=0.3, max_age=1.0, velocity_window=0.3)]


@pytest.fixture(scope="module")
def ref():
    """The reference modules (loaded from git by test/git_modules.py), by name."""
    try:
        loaded = git_modules.load(REFERENCE_COMMIT, ("tracking.ids", "tracking.kalman", "tracking.association", "tracking.tracker"))
    except RuntimeError:
        pytest.skip("the reference commit is not available (no git history)")
    return {name: getattr(loaded, name) for name in MODULES}


def _sequence(seed: int, n_frames: int = 400):
    """Calls: ("update", boxes, scores, stamp, image_size) and ("reset",)."""
    rng = np.random.default_rng(seed)
    people = int(rng.integers(1, 9))
    period = float(rng.choice([1 / 30, 1 / 15, 0.1, 1 / 3]))
    size = np.column_stack([rng.uniform(30, 160, people), rng.uniform(80, 400, people)])   # w, h
    pos = np.column_stack([rng.uniform(0, 640, people), rng.uniform(100, 380, people)])
    vel = rng.normal(0, 60, (people, 2))
    away = np.zeros(people)                                      # s until a person is seen again
    t = 0.0
    for _ in range(n_frames):
        u = rng.random()
        if u < 0.004:
            yield ("reset",)
            t = float(rng.uniform(0, t))                         # time may jump back after a reset
        dt = 0.0 if u < 0.04 else period * rng.uniform(0.8, 1.2) if u < 0.96 else rng.choice([0.4, 0.9, 2.5])
        t += dt
        vel += rng.normal(0, 30, vel.shape) * np.sqrt(dt)
        pos += vel * dt
        size *= np.exp(rng.normal(0, 0.05, size.shape) * np.sqrt(dt))
        for i in range(people):
            v = rng.random()
            if v < 0.01:
                away[i] = rng.choice([0.2, 0.8, 1.5, 3.0])       # hidden: coasting, LOST, deleted
            elif v < 0.015:                                      # walks back into the middle
                pos[i] = rng.uniform([100, 150], [540, 330])
            if not -200 < pos[i, 0] < 840:
                vel[i, 0] = -vel[i, 0]                           # leaves the image and comes back
        away = np.maximum(away - dt, 0)
        seen = np.nonzero((away == 0) & (rng.random(people) > 0.1))[0]
        boxes = np.concatenate([pos[seen] - size[seen] / 2, pos[seen] + size[seen] / 2], axis=1)
        boxes += rng.normal(0, 2, boxes.shape)
        scores = np.clip(rng.normal(0.85, 0.08, len(seen)), 0, 1)
        low = rng.random(len(seen)) < 0.12
        scores[low] = rng.uniform(0.0, 0.5, int(low.sum()))     # partly occluded (or ignored)
        n_fp = int(rng.poisson(0.3))
        fp_xy = rng.uniform([0, 0], [600, 400], (n_fp, 2))
        fp = np.concatenate([fp_xy, fp_xy + rng.uniform(20, 150, (n_fp, 2))], axis=1)
        boxes = np.concatenate([boxes, fp])
        scores = np.concatenate([scores, rng.uniform(0.05, 0.95, n_fp)])
        order = rng.permutation(len(boxes))
        boxes, scores = boxes[order], scores[order]
        image_size = (640, 480) if rng.random() < 0.7 else None
        w = rng.random()
        if w < 0.1:
            boxes, scores = boxes.tolist(), scores.tolist()
        elif w < 0.2:
            boxes, scores = boxes.astype(np.float32), scores.astype(np.float32)
        yield ("update", boxes, scores, t, image_size)


def _check_views(got, want, what):
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        for name in FIELDS:
            a, b = getattr(g, name), getattr(w, name)
            assert a == b and type(a).__name__ == type(b).__name__, f"{name} {what}"   # two TrackState classes
        for name in ARRAYS:
            a, b = getattr(g, name), getattr(w, name)
            assert a.dtype == b.dtype and np.array_equal(a, b), f"{name} {what}"


def _check_filters(new, old, what):
    for name in ("x", "cov", "stamp"):
        a, b = getattr(new._kf, name), getattr(old._kf, name)
        assert a.shape == b.shape and np.array_equal(a, b), f"{name} {what}"


@pytest.mark.parametrize("seed", range(12))
def test_tracker_outputs_equal_the_reference(ref, seed):
    settings = SETTINGS[seed % len(SETTINGS)]
    new, old = tracker.Tracker(seed=seed, **settings), ref["tracker"].Tracker(seed=seed, **settings)
    seen_states, n_removed = set(), 0
    for k, call in enumerate(_sequence(seed)):
        if call[0] == "reset":
            new.reset()
            old.reset()
            continue
        _, boxes, scores, stamp, image_size = call
        got = new.update(boxes, scores, stamp, image_size=image_size)
        want = old.update(boxes, scores, stamp, image_size=image_size)
        what = f"frame {k} t={stamp:.4f} seed {seed}"
        _check_views(got, want, what)
        _check_filters(new, old, what)
        removed = [[(r.track_id, r.body_id, r.was_confirmed) for r in trk.pop_removed()] for trk in (new, old)]
        assert removed[0] == removed[1], what
        n_removed += len(removed[1])
        assert len(new) == len(old)
        seen_states |= {v.state for v in want}
        # The views own their arrays, and the tracker keeps none of the inputs: scribbling on
        # either must change nothing later.
        for v in got + want:
            for name in ARRAYS:
                getattr(v, name)[:] = -1e6
        if isinstance(boxes, np.ndarray):
            boxes[:] = 1e6
    # Every state was taken (min_hits 1 skips TENTATIVE) and tracks were deleted.
    assert len(seen_states) == (3 if settings.get("min_hits", 3) <= 1 else 4) and n_removed > 0


def test_the_same_errors_as_the_reference(ref):
    new, old = tracker.Tracker(seed=0), ref["tracker"].Tracker(seed=0)
    for trk in (new, old):
        trk.update([[0, 0, 10, 20]], [0.9], 1.0)
    for boxes, scores, stamp in [([[0, 0, 10, 20]], [0.9, 0.8], 2.0), ([[0, 0, np.nan, 20]], [0.9], 2.0),
                                 ([[0, 0, 10, 20]], [np.inf], 2.0), ([[0, 0, 10, 20]], [0.9], 0.5)]:
        messages = []
        for trk in (new, old):
            with pytest.raises(ValueError) as err:
                trk.update(boxes, scores, stamp)
            messages.append(str(err.value))
        assert messages[0] == messages[1]


def test_kalman_and_association_functions_equal_the_reference(ref):
    rng = np.random.default_rng(3)
    k_new, k_old, a_old = kalman.BoxKalmanBatch(), ref["kalman"].BoxKalmanBatch(), ref["association"]
    for step in range(200):
        n = len(k_new)
        if n < 8 and rng.random() < 0.3:
            z = np.column_stack([rng.uniform(0, 600, 2), rng.uniform(0, 400, 2),
                                 rng.uniform(0.5, 100, 2), rng.uniform(0.5, 300, 2)])
            for k in (k_new, k_old):
                k.add(z.copy(), step * 0.05)
        n = len(k_new)
        rows = sorted(rng.choice(n, int(rng.integers(0, n + 1)), replace=False).tolist()) if n else []
        stamp = step * 0.05 + float(rng.uniform(-0.1, 0.1))
        some = rows if rng.random() < 0.3 else None
        for k in (k_new, k_old):
            k.predict(stamp, some)
        z = k_old.x[rows, :4] + rng.normal(0, 5, (len(rows), 4))
        assert np.array_equal(k_new.gating_distance(rows, z), k_old.gating_distance(rows, z))
        assert np.array_equal(k_new.update(rows, z.copy()), k_old.update(rows, z.copy()))
        assert np.array_equal(k_new.boxes(), k_old.boxes())
        for name in ("x", "cov", "stamp"):
            assert np.array_equal(getattr(k_new, name), getattr(k_old, name)), name
        if n and rng.random() < 0.05:
            mask = rng.random(n) < 0.7
            for k in (k_new, k_old):
                k.keep(mask)
        a, b = kalman.cxcywh_to_xyxy(k_new.x), rng.uniform(0, 400, (int(rng.integers(0, 6)), 4))
        b[:, 2:] += b[:, :2]
        iou = association.iou_matrix(a, b)
        assert np.array_equal(iou, a_old.iou_matrix(a, b))
        assert association.match(iou, 0.3) == a_old.match(iou, 0.3)
        cost, allowed = rng.random(iou.shape), rng.random(iou.shape) < 0.4
        assert association.assign(cost, allowed) == a_old.assign(cost, allowed)
        # Allowed pairs already one-to-one (the solver is skipped), some costs not finite.
        n, m = int(rng.integers(0, 9)), int(rng.integers(0, 9))
        allowed = np.zeros((n, m), dtype=bool)
        k = int(rng.integers(0, min(n, m) + 1))
        allowed[rng.permutation(n)[:k], rng.permutation(m)[:k]] = True
        cost = rng.random((n, m)) * 2
        cost[rng.random((n, m)) < 0.1] = rng.choice([np.inf, np.nan])
        assert association.assign(cost, allowed) == a_old.assign(cost, allowed)
