"""Drawing estimated bodies over the source image (mesh + skeleton, one colour per person)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .camera import Intrinsics
from .estimator import BodyEstimate

PALETTE = [(230, 90, 60), (60, 160, 230), (90, 200, 90), (230, 190, 50), (170, 90, 220),
           (50, 200, 190), (240, 120, 170), (150, 150, 150)]


def person_color(index: int) -> tuple:
    return PALETTE[index % len(PALETTE)]


def _project(points: np.ndarray, k: Intrinsics) -> np.ndarray:
    z = np.maximum(points[:, 2], 1e-6)
    return np.stack((k.fx * points[:, 0] / z + k.cx, k.fy * points[:, 1] / z + k.cy), -1)


def draw_mesh(canvas: np.ndarray, vertices: np.ndarray, faces: np.ndarray, k: Intrinsics,
              color: tuple, alpha: float = 0.6) -> None:
    """Flat-shaded mesh, painter's algorithm (far faces first), blended into ``canvas`` (RGB)."""
    tri = vertices[faces]                                        # [F,3,3]
    in_front = (tri[:, :, 2] > 1e-3).all(1)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centroids = tri.mean(1)
    # Faces towards the camera: normal opposes the viewing ray (camera at the origin).
    facing = (normals * centroids).sum(1) < 0
    keep = np.nonzero(in_front & facing)[0]
    if keep.size == 0:
        return
    keep = keep[np.argsort(-centroids[keep, 2])]
    unit = normals[keep] / np.maximum(np.linalg.norm(normals[keep], axis=1, keepdims=True), 1e-12)
    view = -centroids[keep] / np.maximum(np.linalg.norm(centroids[keep], axis=1, keepdims=True), 1e-12)
    shade = 0.35 + 0.65 * np.clip((unit * view).sum(1), 0, 1)
    pix = np.round(_project(tri[keep].reshape(-1, 3), k) * 4).astype(np.int32).reshape(-1, 3, 2)
    layer = canvas.copy()
    base = np.asarray(color, dtype=np.float64)
    for polygon, s in zip(pix, shade):
        cv2.fillConvexPoly(layer, polygon, tuple(int(c) for c in base * s), cv2.LINE_AA, shift=2)
    mask = np.zeros(canvas.shape[:2], np.uint8)
    cv2.fillPoly(mask, list(pix), 255, shift=2)
    m = (mask > 0)[..., None]
    canvas[:] = np.where(m, (alpha * layer + (1 - alpha) * canvas).astype(np.uint8), canvas)


def draw_skeleton(canvas: np.ndarray, joints2d: np.ndarray, parents: Sequence[int],
                  color: tuple) -> None:
    h, w = canvas.shape[:2]
    thickness = max(2, round(min(h, w) / 250))
    for child, parent in enumerate(parents):
        if parent < 0:
            continue
        a, b = joints2d[child], joints2d[parent]
        if np.all(np.isfinite([a, b])):
            cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), (255, 255, 255),
                     thickness + 2, cv2.LINE_AA)
            cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), color,
                     thickness, cv2.LINE_AA)
    for point in joints2d:
        if np.all(np.isfinite(point)):
            cv2.circle(canvas, tuple(int(v) for v in point), thickness + 1, color, -1, cv2.LINE_AA)


def render_overlay(image_rgb: np.ndarray, bodies: Sequence[BodyEstimate], faces: np.ndarray,
                   parents: Sequence[int], intrinsics: Intrinsics, draw_boxes: bool = True) -> np.ndarray:
    """RGB image with every body's mesh, skeleton and crop box drawn in its own colour."""
    canvas = image_rgb.copy()
    # Far people first so that nearer ones are drawn over them.
    for index in sorted(range(len(bodies)), key=lambda i: -float(bodies[i].transl[2])):
        body, color = bodies[index], person_color(index)
        draw_mesh(canvas, body.vertices, faces, intrinsics, color)
        draw_skeleton(canvas, body.joints2d, parents, color)
        if draw_boxes:
            x0, y0, x1, y1 = (int(round(v)) for v in body.box)
            cv2.rectangle(canvas, (x0, y0), (x1, y1), color, 2)
            cv2.putText(canvas, f"#{index}", (x0 + 4, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                        color, 2, cv2.LINE_AA)
    return canvas
