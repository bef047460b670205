"""The frame pipeline runs SMPL's mesh only when a frame publishes it, and its outputs do not
depend on that: mesh-free estimates and rebuilds equal the full ones (to 1e-6), and a frame
without mesh subscribers publishes the same bodies and TF as one with them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pare_ros.assets import synthetic_smpl_dir
from pare_ros.benchmarking.null_network import NullNetwork
from pare_ros.body_model import BodyModel
from pare_ros.camera import Intrinsics
from pare_ros.estimator import BodyEstimator, rebuild_bodies, with_vertices

BOXES = np.array([[40.0, 60.0, 200.0, 440.0], [300.0, 50.0, 420.0, 400.0], [480.0, 120.0, 600.0, 470.0]])
K = Intrinsics(520.0, 515.0, 318.0, 242.0)
IMAGE = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
FIELDS = ("rotmats", "axis_angle", "betas", "transl", "joints3d", "keypoints3d", "joints2d", "keypoints2d",
          "rest_joints", "part_visibility", "cam_crop")


class CountingBodyModel(torch.nn.Module):
    """A BodyModel that counts its calls with and without the mesh (``skeleton``: without)."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner, self.calls = inner, {True: 0, False: 0}
        self.faces, self.parents, self.vertex_parts = inner.faces, inner.parents, inner.vertex_parts

    def forward(self, rotmats, betas, vertices=True):
        self.calls[bool(vertices)] += 1
        return self.inner(rotmats, betas, vertices=vertices)

    def skeleton(self, rotmats, betas):
        self.calls[False] += 1
        return self.inner.skeleton(rotmats, betas)


@pytest.fixture(scope="module")
def body_model():
    return BodyModel.from_dir(synthetic_smpl_dir("neutral"))


def close(a, b, atol):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), atol=atol, rtol=0)


def test_mesh_free_estimate_equals_the_full_one(body_model):
    estimator = BodyEstimator(NullNetwork(), body_model)
    full = estimator.estimate(IMAGE, BOXES, K)
    lean = estimator.estimate(IMAGE, BOXES, K, vertices=False, part_maps=False)
    for a, b in zip(full.bodies, lean.bodies):
        assert b.vertices is None and b.part_attention is None and b.part_segm_logits is None
        assert a.vertices.shape == (6890, 3) and a.part_attention.shape == (24, 56, 56)
        for name in FIELDS:
            close(getattr(b, name), getattr(a, name), 1e-3 if name.endswith("2d") else 1e-5)


def test_mesh_free_rebuild_and_with_vertices_equal_the_full_rebuild(body_model):
    bodies = BodyEstimator(NullNetwork(), body_model).estimate(IMAGE, BOXES, K).bodies
    rng = np.random.default_rng(1)
    rot = np.stack([b.rotmats for b in bodies])
    betas = np.stack([b.betas for b in bodies]) + rng.normal(0, 0.3, (3, 10))
    transl = np.stack([b.transl for b in bodies]) + rng.normal(0, 0.1, (3, 3))
    full = rebuild_bodies(body_model, bodies, rot, betas, transl, K)
    lean = rebuild_bodies(body_model, bodies, rot, betas, transl, K, vertices=False)
    for a, b in zip(full, lean):
        assert b.vertices is None
        for name in ("joints3d", "keypoints3d", "rest_joints", "transl", "betas"):
            close(getattr(b, name), getattr(a, name), 1e-6)
        close(b.joints2d, a.joints2d, 1e-3)
    filled = with_vertices(body_model, lean)
    for a, b, c in zip(full, filled, lean):
        close(b.vertices, a.vertices, 1e-6)
        assert b.joints3d is c.joints3d                                   # nothing else recomputed
    assert with_vertices(body_model, full)[0] is full[0]


ros = pytest.importorskip("rclpy", reason="FrameProcessor messages need rclpy")


def processor(body_model, smoother=True, **settings):
    pytest.importorskip("pare_ros.msg", reason="pare_ros messages not built")
    from pare_ros.ros.frame_processor import FrameProcessor, ProcessorSettings
    from pare_ros.ros.pipeline_factory import FixedBoxesDetector
    from pare_ros.tracking import BodySmoother, Tracker

    counting = CountingBodyModel(body_model)
    estimator = BodyEstimator(NullNetwork(), counting)
    detector = FixedBoxesDetector(BOXES, min_box_height=0.0, max_people=len(BOXES))
    return FrameProcessor(estimator, detector, Tracker(min_hits=1, seed=0), ProcessorSettings(**settings),
                          smoother=BodySmoother() if smoother else None), counting


def frames(n):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from benchmark import image_message

    return [image_message(IMAGE, i) for i in range(n)]


@pytest.mark.parametrize("smoother", [True, False])
def test_outputs_do_not_depend_on_whether_the_mesh_is_computed(body_model, smoother):
    lean, lean_counts = processor(body_model, smoother)
    full, full_counts = processor(body_model, smoother, markers_max_rate=1e6)
    for image, info, stamp in frames(4):
        a = lean.process(image, info, want_markers=False, want_points=False, now=stamp)
        b = full.process(image, info, want_markers=True, want_points=True, now=stamp)
        assert a.markers is None and a.body_points is None and b.body_points.width == 3 * 6890
        assert len(a.bodies.bodies) == len(b.bodies.bodies) == 3
        for x, y in zip(a.bodies.bodies, b.bodies.bodies):
            assert (x.body_id, x.track_id) == (y.body_id, y.track_id)
            for name in ("joints_3d", "transl", "betas", "global_orient", "body_pose", "joint_confidence"):
                close(getattr(x, name), getattr(y, name), 2e-6)
            close(x.joints_2d, y.joints_2d, 1e-3)
        assert [t.child_frame_id for t in a.transforms] == [t.child_frame_id for t in b.transforms]
        close([[t.transform.translation.x, t.transform.rotation.w] for t in a.transforms],
              [[t.transform.translation.x, t.transform.rotation.w] for t in b.transforms], 2e-6)
    # No mesh without subscribers; with a smoother, one mesh-free SMPL run in the estimator
    # (placement) and one on the smoothed parameters per frame.
    assert lean_counts.calls[True] == 0
    assert lean_counts.calls[False] == 4 * (2 if smoother else 1)
    assert full_counts.calls[True] == 4


def test_coasting_track_gets_its_mesh_when_a_subscriber_comes(body_model):
    proc, counts = processor(body_model)
    image, info, stamp = frames(1)[0]
    proc.process(image, info, want_markers=False, now=stamp)          # estimates without mesh
    assert all(b.vertices is None for b in proc._last_estimate.values())
    proc.detector.parts = proc.detector.parts[:1]                      # two people now unmatched
    image, info, stamp = frames(2)[1]
    out = proc.process(image, info, want_markers=True, want_points=True, now=stamp)
    assert out.people == 3 and sorted(b.tracking_state for b in out.bodies.bodies) == [1, 2, 2]
    assert out.body_points is not None and out.body_points.width == out.people * 6890
    assert all(b.vertices is not None for b in proc._last_estimate.values())
