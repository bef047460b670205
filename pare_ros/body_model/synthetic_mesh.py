"""The surface of the synthetic SMPL-format body (see :mod:`.synthetic` for why it exists).

Construction (deterministic), in the SMPL rest T-pose (metres; x = person's left, y up, z front):

1. The front-view silhouette is a union of tapered 2D capsules along the limbs. Its boundary
   (B points) and a hexagonal grid inside (I points) are Delaunay-triangulated into a disk.
2. The disk is "inflated": interior points get a front copy at +z(x, y) and a back copy at
   −z(x, y), with z the half-depth of the capsules (round cross-sections), boundary points stay
   at z = 0. Two disks glued along their boundary form a closed genus-0 surface, so
   V = 2I + B = 6890 gives exactly F = 2V − 4 = 13776 faces.
3. The bottom of the legs is sheared forward into feet; the vertices that smplx reads as face,
   foot and finger-tip keypoints (``smplx.vertex_ids``) are moved to the matching places.
"""
from __future__ import annotations

import functools
from typing import Tuple

import cv2
import numpy as np
from scipy.spatial import Delaunay
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from ..constants import NUM_SMPL_FACES, NUM_SMPL_VERTICES

SEED = 0

# --------------------------------------------------------------------------------------------
# Design: rest joints, limb capsules, keypoint vertices (metres; x = person's left, y up, z front)
# --------------------------------------------------------------------------------------------
_LEFT_JOINTS = {  # left and centre joints; right ones are mirrored (x → −x)
    0: (0.0, -0.22, 0.0), 1: (0.07, -0.31, 0.0), 3: (0.0, -0.10, 0.0), 4: (0.10, -0.70, 0.0),
    6: (0.0, 0.03, 0.0), 7: (0.09, -1.13, 0.0), 9: (0.0, 0.09, 0.0), 10: (0.11, -1.19, 0.10),
    12: (0.0, 0.30, 0.0), 13: (0.08, 0.20, 0.0), 15: (0.0, 0.37, 0.0), 16: (0.17, 0.235, 0.0),
    18: (0.42, 0.23, 0.0), 20: (0.67, 0.235, 0.0), 22: (0.75, 0.232, 0.0),
}
_MIRROR = {2: 1, 5: 4, 8: 7, 11: 10, 14: 13, 17: 16, 19: 18, 21: 20, 23: 22}

# (start xy, end xy, start radius, end radius, depth factor = z half-depth / radius)
_CENTRE_CAPSULES = (
    ((0.0, -0.24), (0.0, 0.17), 0.135, 0.14, 0.72),      # trunk
    ((-0.07, -0.29), (0.07, -0.29), 0.10, 0.10, 0.85),   # hips
    ((-0.15, 0.215), (0.15, 0.215), 0.07, 0.07, 0.9),    # shoulders
    ((0.0, 0.20), (0.0, 0.36), 0.055, 0.05, 1.0),        # neck
    ((0.0, 0.40), (0.0, 0.44), 0.095, 0.09, 1.05),       # head
)
_LEFT_CAPSULES = (
    ((0.16, 0.225), (0.42, 0.23), 0.055, 0.045, 1.0),    # upper arm
    ((0.42, 0.23), (0.67, 0.235), 0.045, 0.035, 1.0),    # forearm
    ((0.67, 0.235), (0.79, 0.23), 0.04, 0.035, 0.55),    # flat hand
    ((0.085, -0.31), (0.10, -0.70), 0.085, 0.06, 1.0),   # thigh
    ((0.10, -0.70), (0.09, -1.19), 0.058, 0.045, 1.0),   # shin, down to the sole
)
_BOUNDS = (-0.85, 0.85, -1.26, 0.56)      # x0, x1, y0, y1 of the silhouette's bounding box
_FOOT_TOP, _FOOT_FULL = -1.10, -1.17      # feet: shear starts / reaches full strength (y)

# Places of the smplx vertex keypoints (left side; right mirrored, "r…" ↔ "l…", "R…" ↔ "L…").
# Points lie just outside the surface so that the nearest vertex is on the intended side.
_KEYPOINT_TARGETS = {
    "nose": (0.0, 0.41, 0.2), "leye": (0.035, 0.445, 0.2), "lear": (0.2, 0.42, 0.0),
    "LBigToe": (0.075, -1.225, 0.3), "LSmallToe": (0.135, -1.225, 0.25),
    "LHeel": (0.09, -1.235, -0.2),
    "lthumb": (0.72, 0.215, 0.1), "lindex": (0.9, 0.24, 0.03), "lmiddle": (0.9, 0.235, 0.0),
    "lring": (0.9, 0.23, -0.03), "lpinky": (0.88, 0.225, -0.05),
}


def rest_joints() -> np.ndarray:
    """Designed rest-pose joint locations of the neutral synthetic model, [24, 3]."""
    joints = np.zeros((24, 3))
    for j, p in _LEFT_JOINTS.items():
        joints[j] = p
    for j, src in _MIRROR.items():
        joints[j] = joints[src] * (-1.0, 1.0, 1.0)
    return joints


def _capsules() -> np.ndarray:
    """All capsules as rows (ax, ay, bx, by, ra, rb, depth), [K, 7]."""
    rows = [(*a, *b, ra, rb, d) for a, b, ra, rb, d in _CENTRE_CAPSULES]
    for a, b, ra, rb, d in _LEFT_CAPSULES:
        rows.append((*a, *b, ra, rb, d))
        rows.append((-a[0], a[1], -b[0], b[1], ra, rb, d))
    return np.array(rows, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# 1–2. Silhouette disk → inflated closed surface
# --------------------------------------------------------------------------------------------
def _silhouette(points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Signed distance to the silhouette [P] (negative inside) and half-depth z(x, y) [P]."""
    sdf = np.full(len(points), np.inf)
    half_depth = np.zeros(len(points))
    for ax, ay, bx, by, ra, rb, depth in _capsules():
        a, ab = np.array([ax, ay]), np.array([bx - ax, by - ay])
        q = points - a
        t = np.clip(q @ ab / (ab @ ab), 0.0, 1.0)
        e2 = ((q - t[:, None] * ab) ** 2).sum(1)          # squared distance to the axis
        r = ra + t * (rb - ra)
        np.minimum(sdf, np.sqrt(e2) - r, out=sdf)
        # round cross-section of radius r, flattened by the depth factor
        np.maximum(half_depth, depth * np.sqrt(np.clip(r * r - e2, 0.0, None)), out=half_depth)
    return sdf, half_depth


def _sdf(points: np.ndarray) -> np.ndarray:
    return _silhouette(points)[0]


def _boundary_polygon(resolution: float = 0.004) -> np.ndarray:
    """The silhouette outline as a counter-clockwise polygon [P, 2] (raster contour)."""
    x0, x1, y0, y1 = _BOUNDS
    xs, ys = np.arange(x0, x1, resolution), np.arange(y0, y1, resolution)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    mask = (_sdf(grid) < 0).reshape(len(ys), len(xs)).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if len(contours) != 1:
        raise RuntimeError(f"synthetic silhouette has {len(contours)} outlines, expected 1")
    pixels = contours[0][:, 0].astype(np.float64)
    poly = np.stack([x0 + pixels[:, 0] * resolution, y0 + pixels[:, 1] * resolution], 1)
    area2 = np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])
    return poly if area2 > 0 else poly[::-1]


def _resample_outline(poly: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced along the outline, projected onto the exact boundary."""
    closed = np.vstack([poly, poly[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    s = np.arange(count) * arc[-1] / count
    pts = np.stack([np.interp(s, arc, closed[:, k]) for k in range(2)], 1)
    for _ in range(4):   # Newton steps along the numerical gradient of the signed distance
        d, eps = _sdf(pts), 1e-6
        grad = np.stack([(_sdf(pts + (eps, 0.0)) - d) / eps, (_sdf(pts + (0.0, eps)) - d) / eps], 1)
        pts = pts - d[:, None] * grad / np.maximum((grad ** 2).sum(1, keepdims=True), 1e-12)
    return pts


def _hex_grid(spacing: float) -> np.ndarray:
    """Hexagonal grid points inside the silhouette, kept ~half a spacing from the outline."""
    x0, x1, y0, y1 = _BOUNDS
    xs = np.arange(x0, x1, spacing)
    ys = np.arange(y0, y1, spacing * np.sqrt(3) / 2)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + (np.arange(len(ys)) % 2)[:, None] * spacing / 2
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    return pts[_sdf(pts) < -0.45 * spacing]


def _disk_points(poly: np.ndarray, n_vertices: int) -> Tuple[np.ndarray, np.ndarray]:
    """Boundary [B, 2] and interior [I, 2] points with 2I + B = n_vertices exactly."""
    perimeter = np.linalg.norm(np.diff(np.vstack([poly, poly[:1]]), axis=0), axis=1).sum()

    def counts(spacing):
        b = int(round(perimeter / (0.75 * spacing)))     # denser outline → Delaunay keeps it
        b += (n_vertices - b) % 2
        return b, _hex_grid(spacing)

    lo, hi = 0.008, 0.03                                  # bisection on the grid spacing
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        b, inner = counts(mid)
        lo, hi = (mid, hi) if 2 * len(inner) + b >= n_vertices else (lo, mid)
    b, inner = counts(lo)
    keep = np.random.default_rng(SEED).choice(len(inner), (n_vertices - b) // 2, replace=False)
    return _resample_outline(poly, b), inner[np.sort(keep)]


def _triangulate_disk(boundary: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Counter-clockwise triangles [F, 3] of the silhouette over boundary + inner points."""
    pts = np.vstack([boundary, inner])
    tri = Delaunay(pts).simplices
    tri = tri[_sdf(pts[tri].mean(1)) < 0]                 # drop triangles outside the outline
    a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    tri[cross < 0] = tri[cross < 0][:, [0, 2, 1]]
    # A disk: every point used, the edges used once are exactly the outline's B edges.
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(edges, axis=0, return_counts=True)
    once = uniq[count == 1]
    if (count.max() > 2 or len(once) != len(boundary) or once.max() >= len(boundary)
            or len(np.unique(tri)) != len(pts)):
        raise RuntimeError("synthetic silhouette triangulation is not a disk")
    return tri


@functools.lru_cache(maxsize=1)
def neutral_surface() -> Tuple[np.ndarray, np.ndarray]:
    """Closed genus-0 neutral surface: vertices [6890, 3], outward-oriented faces [13776, 3]."""
    boundary, inner = _disk_points(_boundary_polygon(), NUM_SMPL_VERTICES)
    tri = _triangulate_disk(boundary, inner)
    nb, ni = len(boundary), len(inner)
    z = _silhouette(inner)[1]
    verts = np.vstack([
        np.column_stack([boundary, np.zeros(nb)]),         # 0..B-1: outline at z = 0
        np.column_stack([inner, z]),                       # front sheet
        np.column_stack([inner, -z]),                      # back sheet
    ])
    back = np.where(tri < nb, tri, tri + ni)               # same triangles on the back copies
    faces = np.vstack([tri, back[:, [0, 2, 1]]])           # back faces flipped → outward normals
    verts = _shear_feet(verts)
    verts, faces = _place_keypoint_vertices(verts, faces)
    assert faces.shape == (NUM_SMPL_FACES, 3)
    return verts, faces


def _shear_feet(verts: np.ndarray) -> np.ndarray:
    """Stretch the bottom of the legs forward (+z) into feet; monotone in z, so no folds."""
    y = verts[:, 1]
    s = np.clip((_FOOT_TOP - y) / (_FOOT_TOP - _FOOT_FULL), 0.0, 1.0)
    s = s * s * (3 - 2 * s)                                # smoothstep
    out = verts.copy()
    out[:, 2] = verts[:, 2] * (1 + 1.8 * s) + 0.04 * s
    return out


def _place_keypoint_vertices(verts: np.ndarray, faces: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Renumber vertices so smplx's keypoint vertex ids (nose 332, ...) sit at those places."""
    targets = dict(_KEYPOINT_TARGETS)
    for name, (x, y, zz) in _KEYPOINT_TARGETS.items():
        mirrored = ("r" + name[1:]) if name[0] == "l" else ("R" + name[1:]) if name[0] == "L" else None
        if mirrored:
            targets[mirrored] = (-x, y, zz)
    ids = SMPLX_VERTEX_IDS["smplh"]
    order = np.arange(len(verts))                          # new index → old index
    taken = set()
    for name, target in targets.items():
        dist = np.linalg.norm(verts - np.asarray(target), axis=1)
        dist[list(taken)] = np.inf
        chosen = int(np.argmin(dist))
        taken.add(chosen)
        slot, pos = ids[name], int(np.nonzero(order == chosen)[0][0])
        order[slot], order[pos] = order[pos], order[slot]
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    return verts[order], new_index[faces]
