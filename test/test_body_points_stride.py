"""``body_points.stride`` k > 1: the frame skins only every k-th vertex when the body points are
its only mesh consumer, and publishes the same points as the whole mesh's every k-th row.

Known answer: a second FrameProcessor with stride 1 on the same frames (people walking across
the image, one of them missing for a few frames so that its track coasts); its clouds' every
k-th point per person is the reference. The cost claim is checked by counting the vertices the
mesh skinning is asked for."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pare_ros.assets import synthetic_smpl_dir
from pare_ros.benchmarking.null_network import NullNetwork
from pare_ros.body_model import BodyModel
from pare_ros.body_model import skinning as skinning_module
from pare_ros.detection.base import Detections
from pare_ros.estimator import BodyEstimator, vertex_rows

pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from pare_ros.ros.frame_processor import FrameProcessor, ProcessorSettings  # noqa: E402
from pare_ros.ros.pipeline_factory import FixedBoxesDetector  # noqa: E402
from pare_ros.tracking import BodySmoother, Tracker  # noqa: E402

from benchmark import image_message  # noqa: E402

STEP = 7
N_VERTS = 6890


@pytest.fixture(scope="module")
def body_model():
    return BodyModel.from_dir(synthetic_smpl_dir("neutral"))


def processor(body_model, stride: int, markers_max_rate: float = 10.0) -> FrameProcessor:
    settings = ProcessorSettings()
    settings.publish_body_points, settings.body_points_stride = True, stride
    settings.markers_max_rate = markers_max_rate
    estimator = BodyEstimator(NullNetwork(4, "cpu"), body_model, device="cpu")
    return FrameProcessor(estimator, FixedBoxesDetector(np.zeros((0, 4)), 0.0, 8),
                          Tracker(min_hits=1, seed=0, max_coast=1.0), settings, smoother=BodySmoother())


def walking_boxes(i: int):
    """Two people walking right at 3 px a frame; the second is not detected in frames 4-6."""
    boxes = [[40 + 3 * i, 60, 160 + 3 * i, 440], [400 - 2 * i, 80, 500 - 2 * i, 420]]
    return boxes if not 4 <= i <= 6 else boxes[:1]


def clouds(out):
    """track id → its points [V',3] of the frame's body-point cloud."""
    points = out.body_points.points
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float64)
    return {int(t): xyz[points["track_id"] == t] for t in np.unique(points["track_id"])}


@pytest.mark.parametrize("want_markers", [False, True])
def test_strided_points_equal_the_whole_mesh_rows(body_model, monkeypatch, want_markers):
    skinned = []
    forward = skinning_module.MeshSkinning.forward

    def counting(self, *args):
        skinned.append(self.num_vertices)
        return forward(self, *args)

    monkeypatch.setattr(skinning_module.MeshSkinning, "forward", counting)
    reference, strided = processor(body_model, 1), processor(body_model, STEP)
    pixels = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    coasted = 0
    for i in range(10):
        image, info, stamp = image_message(pixels, i)
        boxes = walking_boxes(i)
        detections = Detections(np.array(boxes, np.float32), np.ones(len(boxes), np.float32))
        outs = []
        for proc in (reference, strided):
            skinned.clear()
            outs.append(proc.process(image, info, want_markers=want_markers, want_points=True, now=stamp,
                                     detections=detections))
            if proc is strided and not want_markers:
                # Only the every-k-th rows were skinned, never the whole mesh.
                assert skinned and set(skinned) == {len(range(0, N_VERTS, STEP))}, skinned
        full, thin = clouds(outs[0]), clouds(outs[1])
        assert sorted(full) == sorted(thin) and len(full) == 2, (i, sorted(full), sorted(thin))
        coasted += len(boxes) < 2
        for track_id in full:
            expected = full[track_id][::STEP]
            assert thin[track_id].shape == expected.shape
            np.testing.assert_allclose(thin[track_id], expected, atol=1e-6, rtol=0)
    assert coasted == 3


def test_vertex_rows_known_mesh_and_skinned_rows(body_model):
    """Bodies with a mesh give its rows exactly; bodies without one get SMPL's rows of their
    own parameters through the subset (the whole mesh's rows to 1e-6 m)."""
    import dataclasses

    boxes = np.array([[40.0, 60.0, 200.0, 440.0], [300.0, 50.0, 420.0, 400.0], [480.0, 120.0, 600.0, 470.0]])
    image = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    bodies = BodyEstimator(NullNetwork(4, "cpu"), body_model).estimate(image, boxes).bodies
    subset = body_model.vertex_subset(np.arange(0, N_VERTS, STEP))
    rows = vertex_rows(body_model, bodies, STEP, subset)
    for body, r in zip(bodies, rows):
        assert np.array_equal(r, np.asarray(body.vertices)[::STEP])
    stripped = [dataclasses.replace(b, vertices=None) for b in bodies]
    for body, r in zip(bodies, vertex_rows(body_model, stripped, STEP, subset)):
        np.testing.assert_allclose(r, np.asarray(body.vertices)[::STEP], atol=1e-6, rtol=0)
        assert r.shape == (len(range(0, N_VERTS, STEP)), 3)
