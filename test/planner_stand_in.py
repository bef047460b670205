"""TEST STAND-IN for the network and the detector (not a model of PARE): images in which the
node sees people at known places, for the planner-output tests.

A person is drawn as an anti-aliased white rectangle (the box of a 1.75 m × 0.5 m upright body)
on black; :class:`BoxDetector` recovers the box with sub-pixel precision from the grey levels,
and :class:`BoxEstimator` places an upright SMPL body (synthetic model) whose pelvis is where
the box says: depth = fy·1.75/box height, pelvis 0.93 m above the feet, facing the camera. For a
level camera (optical axis horizontal, as on a robot that drives and turns about z) this is
exact, so the test knows the ground truth to ~1 mm. Everything downstream — tracker, smoother,
world-frame mapping, publishers — is the node's real code.

Run as a node: ``python -m planner_stand_in --ros-args ...`` (``test/`` on PYTHONPATH) starts
``pare_node`` with these two parts swapped in after its pipeline is built.
"""
from __future__ import annotations

import math
import sys
from typing import Sequence

import numpy as np

HEIGHT, PELVIS, WIDTH = 1.75, 0.93, 0.5


def person_box(pelvis_cam, fx, fy, cx, cy):
    """xyxy px of the body box of a person whose pelvis is at ``pelvis_cam`` (camera optical
    frame, level camera: optical y is the world's down)."""
    x, y, z = (float(v) for v in pelvis_cam)
    top, bottom = y - (HEIGHT - PELVIS), y + PELVIS
    u, half = cx + fx * x / z, fx * WIDTH / 2 / z
    return np.array([u - half, cy + fy * top / z, u + half, cy + fy * bottom / z])


def _coverage(lo: float, hi: float, n: int) -> np.ndarray:
    i = np.arange(n, dtype=np.float64)
    return np.clip(np.minimum(i + 1, hi) - np.maximum(i, lo), 0.0, 1.0)


def render(boxes: Sequence[np.ndarray], width: int, height: int) -> np.ndarray:
    """(H,W,3) uint8: each box as a white rectangle, edge pixels grey by their coverage."""
    img = np.zeros((height, width), np.float64)
    for b in boxes:
        img = np.maximum(img, np.outer(_coverage(b[1], b[3], height), _coverage(b[0], b[2], width)))
    return np.repeat(np.round(255 * img).astype(np.uint8)[..., None], 3, axis=2)


class BoxDetector:
    """Boxes of the white rectangles, sub-pixel from the edge grey levels; score 0.9."""

    def detect(self, rgb):
        from scipy import ndimage

        from pare_ros.detection.base import Detections

        grey = np.asarray(rgb)[..., 0].astype(np.float64) / 255.0
        labels, n = ndimage.label(grey > 0)
        boxes = []
        for sl in ndimage.find_objects(labels):
            patch = grey[sl]
            cols, rows = patch.max(axis=0), patch.max(axis=1)
            x0, y0 = sl[1].start + 1 - cols[0], sl[0].start + 1 - rows[0]
            x1, y1 = sl[1].stop - 1 + cols[-1], sl[0].stop - 1 + rows[-1]
            if y1 - y0 > 10:
                boxes.append([x0, y0, x1, y1])
        boxes.sort(key=lambda b: b[0])
        return Detections(np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.9))


class BoxEstimator:
    """``estimate(rgb, boxes, intrinsics, ...)`` like BodyEstimator, bodies placed from the boxes."""

    def __init__(self, body_model) -> None:
        self.body_model = body_model

    def estimate(self, rgb, boxes, intrinsics, color_order="rgb", scores=None):
        import torch

        from pare_ros.estimator import BodyEstimate, Estimates, rebuild_bodies
        from pare_ros.preprocessing import box_to_crop

        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        k = intrinsics
        bodies, rotmats, transl = [], [], []
        betas = np.zeros((len(boxes), 10))
        j0 = self.body_model.rest_joints(torch.zeros(1, 10))[0, 0].numpy().astype(np.float64)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            z = k.fy * HEIGHT / (y1 - y0)
            v_pelvis = y1 - PELVIS / HEIGHT * (y1 - y0)
            pelvis = np.array([((x0 + x1) / 2 - k.cx) * z / k.fx, (v_pelvis - k.cy) * z / k.fy, z])
            r = np.tile(np.eye(3), (24, 1, 1))
            r[0] = np.diag([1.0, -1.0, -1.0])        # upright (body y = up), facing the camera
            rotmats.append(r)
            transl.append(pelvis - j0)
            score = 0.9 if scores is None else float(scores[i])
            bodies.append(BodyEstimate(
                box=boxes[i].astype(np.float32), score=score, crop=box_to_crop(boxes[i]), cam_crop=np.zeros(3),
                betas=None, rotmats=None, axis_angle=None, transl=None, joints3d=None, keypoints3d=None,
                joints2d=None, keypoints2d=None, vertices=None, rest_joints=None,
                part_attention=np.zeros((24, 1, 1), np.float32), part_segm_logits=np.zeros((25, 1, 1), np.float32),
                part_visibility=np.ones(24, np.float32), truncation=0.0))
        if bodies:
            bodies = rebuild_bodies(self.body_model, bodies, np.stack(rotmats), betas, np.stack(transl), intrinsics)
        h, w = np.asarray(rgb).shape[:2]
        return Estimates(bodies, intrinsics, (w, h), {})


def install() -> None:
    """Swap the stand-ins into the node's pipeline factory (before the node modules import it)."""
    from pare_ros.ros import pipeline_factory

    real = pipeline_factory.build_processor

    def build_processor(node, settings):
        processor, label, report = real(node, settings)
        processor.estimator = BoxEstimator(processor.estimator.body_model)
        processor.detector = BoxDetector()
        return processor, "test-stand-in/box-estimator", report

    pipeline_factory.build_processor = build_processor
    pipeline_factory.make_detector = lambda node: BoxDetector()   # reconfigure keeps the stand-in


def level_camera_pose(x: float, y: float, yaw: float, height: float = 1.2):
    """Optical frame (x right, y down, z forward) of a level camera at (x, y, height) looking
    along world yaw: (rotation (3,3), translation (3,)) camera → world."""
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[s, 0.0, c], [-c, 0.0, s], [0.0, -1.0, 0.0]])   # columns: optical x, y, z
    return rot, np.array([x, y, height])


if __name__ == "__main__":
    install()
    from pare_ros.ros import node

    sys.exit(node.main())
