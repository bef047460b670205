"""The batched box Kalman filter against the textbook 8×8 equations, per track; the tracker's
views and coasting history against what they must hold.

The reference below is written plainly (F, Q by np.kron, H, K = P Hᵀ S⁻¹, P ← (I − K H) P,
symmetrised; d² = dᵀ S⁻¹ d), one track at a time, as the filter was before it was batched.
"""
import numpy as np
import pytest

from pare_ros.tracking import BoxKalmanFilter, Tracker
from pare_ros.tracking.kalman import MIN_SIZE, BoxKalmanBatch, cxcywh_to_xyxy, xyxy_to_cxcywh

MEAS, ACCEL, VEL, SIZE_ACCEL, SIZE_RATE = 0.05, 0.5, 1.0, 0.1, 0.3
H = np.hstack([np.eye(4), np.zeros((4, 4))])


class Reference:
    """One track's filter, textbook form."""

    def __init__(self, box, stamp):
        x0, y0, x1, y1 = box
        z = np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])
        self.x = np.concatenate([z, np.zeros(4)])
        h = max(z[3], MIN_SIZE)
        rate = np.array([VEL, VEL, SIZE_RATE, SIZE_RATE])
        self.P = np.diag(np.r_[np.full(4, (MEAS * h) ** 2), (rate * h) ** 2])
        self.stamp = stamp

    def predict(self, stamp):
        dt = stamp - self.stamp
        if dt > 0:
            F = np.eye(8)
            F[:4, 4:] = dt * np.eye(4)
            accel = np.array([ACCEL, ACCEL, SIZE_ACCEL, SIZE_ACCEL])
            q = np.diag((accel * max(self.x[3], MIN_SIZE)) ** 2)
            Q = np.kron(np.array([[dt ** 3 / 3, dt ** 2 / 2], [dt ** 2 / 2, dt]]), q)
            self.x = F @ self.x
            self.P = F @ self.P @ F.T + Q
            self.x[2:4] = np.maximum(self.x[2:4], MIN_SIZE)
            self.stamp = stamp

    def update(self, box):
        x0, y0, x1, y1 = box
        z = np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])
        S = H @ self.P @ H.T + (MEAS * max(z[3], MIN_SIZE)) ** 2 * np.eye(4)
        K = self.P @ H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (z - H @ self.x)
        self.P = (np.eye(8) - K @ H) @ self.P
        self.P = (self.P + self.P.T) / 2

    def gating_distance(self, boxes):
        S = H @ self.P @ H.T + (MEAS * max(self.x[3], MIN_SIZE)) ** 2 * np.eye(4)
        out = []
        for x0, y0, x1, y1 in boxes:
            d = np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]) - self.x[:4]
            out.append(d @ np.linalg.inv(S) @ d)
        return np.array(out)


def full_covariance(cov):
    """[3,4] (var, cov, rate_var per coordinate) → the 8×8 P."""
    P = np.zeros((8, 8))
    i = np.arange(4)
    P[i, i], P[i, i + 4], P[i + 4, i], P[i + 4, i + 4] = cov[0], cov[1], cov[1], cov[2]
    return P


def random_boxes(rng, n):
    xy = rng.uniform(-50, 600, (n, 2))
    # Some boxes below MIN_SIZE, so that the size floor is exercised.
    wh = np.where(rng.random((n, 2)) < 0.1, rng.uniform(0.1, 0.9, (n, 2)), rng.uniform(5, 300, (n, 2)))
    return np.concatenate([xy, xy + wh], axis=1)


def assert_close(batch, refs):
    assert len(batch) == len(refs)
    for row, ref in enumerate(refs):
        np.testing.assert_allclose(batch.x[row], ref.x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(full_covariance(batch.cov[row]), ref.P, rtol=1e-9, atol=1e-9)
        assert batch.stamp[row] == ref.stamp


@pytest.mark.parametrize("seed", range(6))
def test_batch_follows_the_textbook_filter(seed):
    rng = np.random.default_rng(seed)
    batch, refs, stamp = BoxKalmanBatch(), [], 0.0
    for step in range(60):
        stamp += float(rng.choice([0.0, 1 / 30, 0.1, 0.4, 1.7]))
        if rng.random() < 0.3 or not refs:                       # new tracks
            new = random_boxes(rng, int(rng.integers(1, 4)))
            batch.add(xyxy_to_cxcywh(new), stamp)
            refs += [Reference(b, stamp) for b in new]
        if rng.random() < 0.2:                                   # some rows predicted on their own
            rows = sorted(rng.choice(len(refs), int(rng.integers(1, len(refs) + 1)), replace=False).tolist())
            batch.predict(stamp, rows)
            for r in rows:
                refs[r].predict(stamp)
        batch.predict(stamp)
        for ref in refs:
            ref.predict(stamp)
        assert_close(batch, refs)
        rows = sorted(rng.choice(len(refs), int(rng.integers(0, len(refs) + 1)), replace=False).tolist())
        dets = random_boxes(rng, int(rng.integers(1, 5)))
        if rows:
            d2 = batch.gating_distance(rows, xyxy_to_cxcywh(dets))
            for k, r in enumerate(rows):
                np.testing.assert_allclose(d2[k], refs[r].gating_distance(dets), rtol=1e-9)
            measured = random_boxes(rng, len(rows))
            states = batch.update(rows, xyxy_to_cxcywh(measured))
            for r, box in zip(rows, measured):
                refs[r].update(box)
            np.testing.assert_allclose(states, [refs[r].x for r in rows], rtol=1e-9, atol=1e-9)
        assert_close(batch, refs)
        if rng.random() < 0.15 and len(refs) > 1:                # tracks deleted
            keep = rng.random(len(refs)) < 0.7
            batch.keep(keep)
            refs = [ref for ref, k in zip(refs, keep) if k]
        np.testing.assert_allclose(batch.boxes(), [cxcywh_to_xyxy(r.x[None])[0] for r in refs] or np.zeros((0, 4)))


def test_the_covariance_is_exactly_four_2x2_blocks():
    # What the batch's storage rests on: F, Q, H and P₀ never couple two coordinates.
    rng = np.random.default_rng(7)
    ref = Reference([10, 20, 50, 140], 0.0)
    for k in range(1, 40):
        ref.predict(k * float(rng.uniform(0.01, 0.5)) + k)
        ref.update(random_boxes(rng, 1)[0])
        off_block = ref.P.copy()
        i = np.arange(4)
        off_block[i, i] = off_block[i, i + 4] = off_block[i + 4, i] = off_block[i + 4, i + 4] = 0
        assert not off_block.any()


def test_row_state_round_trip_and_single_filter():
    batch = BoxKalmanBatch()
    batch.add(xyxy_to_cxcywh([[0, 0, 40, 100], [100, 0, 150, 120]]), 0.0)
    saved = batch.get(1)
    batch.predict(0.5)
    batch.update([1], xyxy_to_cxcywh([[110, 0, 160, 120]]))
    batch.set(1, saved)
    np.testing.assert_array_equal(batch.x[1], saved[0])
    np.testing.assert_array_equal(batch.cov[1], saved[1])
    assert batch.stamp[1] == 0.0 and batch.stamp[0] == 0.5
    # BoxKalmanFilter is a batch of one row.
    single, ref = BoxKalmanFilter([0, 0, 40, 100], 0.0), Reference([0, 0, 40, 100], 0.0)
    for k in range(1, 6):
        box = [6 * k, 0, 6 * k + 40, 100]
        predicted = single.predict(k / 10)
        ref.predict(k / 10)
        np.testing.assert_allclose(predicted, cxcywh_to_xyxy(ref.x[None])[0], rtol=1e-9)
        single.update(box)
        ref.update(box)
    np.testing.assert_allclose(single.velocity, ref.x[4:], rtol=1e-9)
    np.testing.assert_allclose(single.gating_distance([[40, 0, 80, 100]]), ref.gating_distance([[40, 0, 80, 100]]))


def test_views_are_independent_of_the_tracker_state():
    tracker = Tracker(min_hits=1, seed=0)
    boxes = np.array([[10.0, 10, 60, 130], [200, 20, 260, 150]])
    views = tracker.update(boxes, [0.9, 0.9], 0.0)
    boxes[:] = 0                                                  # the caller reuses its buffer
    for v in views:
        v.box[:] = v.filtered_box[:] = v.velocity[:] = -1         # a consumer edits a view
    (a, b) = tracker.update(np.zeros((0, 4)), [], 0.1)            # both coast
    np.testing.assert_allclose(a.filtered_box, [10, 10, 60, 130])
    np.testing.assert_allclose(b.filtered_box, [200, 20, 260, 150])
    assert a.box is not a.filtered_box and not np.shares_memory(a.box, a.filtered_box)


def test_coasting_velocity_is_the_mean_over_the_matches():
    # The coasting velocity is (last filtered centre − first) / time over the window: the first
    # history entry must still be the first box when the track starts coasting.
    tracker = Tracker(min_hits=1, seed=0, velocity_window=1.0)
    centres = []
    for k in range(6):
        (view,) = tracker.update(np.array([[10.0 + 8 * k, 20, 50 + 8 * k, 120]]), [0.9], k / 10)
        centres.append((view.filtered_box[:2] + view.filtered_box[2:]) / 2)
    (view,) = tracker.update(np.zeros((0, 4)), [], 0.6)
    np.testing.assert_allclose(view.velocity[:2], (centres[-1] - centres[0]) / 0.5, rtol=1e-9)
    np.testing.assert_allclose(view.velocity[2:], 0.0)
