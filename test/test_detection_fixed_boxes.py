"""Detector kind 'fixed' (several fixed boxes) against its definition: each box through the
shared post-filter on its own (a FixedRegionDetector), in the given order, then the first
``max_people``; and clip_detections against filter_detections without the ranking."""
import numpy as np
import pytest

from pare_ros.detection import Detections, FixedRegionDetector, filter_detections
from pare_ros.detection.base import clip_detections
from pare_ros.ros.pipeline_factory import FixedBoxesDetector


def one_by_one(boxes, min_box_height, max_people, image):
    found = [FixedRegionDetector(box=b, min_box_height=min_box_height).detect(image) for b in boxes]
    kept = [d for d in found if len(d)]
    if not kept:
        return Detections()
    return Detections(np.concatenate([d.boxes for d in kept])[:max_people],
                      np.concatenate([d.scores for d in kept])[:max_people])


@pytest.mark.parametrize("seed", range(4))
def test_fixed_boxes_equal_one_filter_per_box(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        width, height = int(rng.integers(20, 700)), int(rng.integers(20, 500))
        image = np.zeros((height, width, 3), np.uint8)
        corner = rng.uniform(-100, 800, (int(rng.integers(0, 10)), 2))
        boxes = [tuple(b) for b in np.concatenate([corner, corner + rng.uniform(0.5, 300, corner.shape)], 1)]
        min_box_height, max_people = float(rng.choice([0, 10, 47.5])), int(rng.integers(1, 10))
        got = FixedBoxesDetector(boxes, min_box_height, max_people).detect(image)
        want = one_by_one(boxes, min_box_height, max_people, image)
        assert got.boxes.dtype == np.float32 and got.scores.dtype == np.float32
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.scores, want.scores)


def test_fixed_boxes_follow_parts_and_check_the_image():
    detector = FixedBoxesDetector([(10, 10, 50, 90), (60, 10, 100, 90)], 0.0, 8)
    image = np.zeros((100, 120, 3), np.uint8)
    assert len(detector.detect(image)) == 2
    detector.parts = detector.parts[:1]                         # as a test may do
    np.testing.assert_array_equal(detector.detect(image).boxes, [[10, 10, 50, 90]])
    assert len(FixedBoxesDetector([], 0.0, 8).detect(image)) == 0
    with pytest.raises(ValueError, match="uint8 RGB"):
        detector.detect(np.zeros((100, 120), np.uint8))


def test_clip_detections_is_the_filter_before_ranking():
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = int(rng.integers(0, 12))
        boxes = rng.uniform(-50, 700, (k, 4))
        boxes[:, 2:] = boxes[:, :2] + rng.uniform(-20, 300, (k, 2))
        scores = rng.choice([0.3, 0.9, float(rng.uniform())], k)
        if k:
            boxes[rng.integers(k), rng.integers(4)] = rng.choice([np.nan, np.inf])
        size = None if rng.random() < 0.2 else (int(rng.integers(50, 640)), int(rng.integers(50, 480)))
        dets = Detections(boxes, scores)
        clipped = clip_detections(dets, size, 30.0)
        ranked = filter_detections(dets, size, 30.0)
        assert np.isfinite(clipped.boxes).all() and (clipped.boxes[:, 3] - clipped.boxes[:, 1] >= 30).all()
        if size is not None:
            assert (clipped.boxes >= 0).all() and (clipped.boxes[:, 0::2] <= size[0]).all() \
                and (clipped.boxes[:, 1::2] <= size[1]).all()
        # The same boxes; filter_detections only reorders them (score, then area, descending).
        order = np.lexsort((-(clipped.boxes[:, 2] - clipped.boxes[:, 0]) * (clipped.boxes[:, 3] - clipped.boxes[:, 1]),
                            -clipped.scores.astype(np.float64)))
        np.testing.assert_array_equal(ranked.boxes, clipped.boxes[order])
        np.testing.assert_array_equal(ranked.scores, clipped.scores[order])
