"""Part-label renderer (pare_training.part_labels) on the synthetic SMPL-format body."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pare_ros.body_model import BodyModel
from pare_ros.body_model.synthetic import write_synthetic_model_dir
from pare_ros.geometry import axis_angle_to_rotmat
from pare_training.part_labels import (estimate_crop_translation, face_parts, rasterize_faces,
                                       render_part_labels)

F, SIZE = 5000.0, 224
T = np.array([0.0, 0.3, 50.0])          # body ~175 px tall in the 224 crop


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    write_synthetic_model_dir(d)
    return BodyModel.from_dir(d)


def _pose(body, aa=None):
    pose = torch.zeros(1, 24, 3)
    pose[0, 0, 0] = np.pi                   # SMPL (y up, facing +z) → camera (y down, facing −z)
    for j, v in (aa or {}).items():
        pose[0, j] = torch.tensor(v)
    out = body(axis_angle_to_rotmat(pose), torch.zeros(1, 10))
    return out.vertices[0].numpy() + T, out.joints[0].numpy() + T


def _project(p):
    return F * p[:, :2] / p[:, 2:] + SIZE / 2


def test_tpose_joints_carry_their_part_or_a_neighbour(body):
    verts, joints = _pose(body)
    lab = render_part_labels(verts, body.faces, body.vertex_parts, F, size=SIZE)
    assert lab.shape == (SIZE, SIZE) and lab.dtype == np.uint8
    assert set(np.unique(lab)) == set(range(25))          # background + all 24 parts visible
    parents = body.parents
    uv = np.round(_project(joints)).astype(int)
    inside = ok = 0
    for k, (u, v) in enumerate(uv):
        got = int(lab[v, u]) - 1
        if got < 0:
            continue
        inside += 1
        near = {k, int(parents[k])} | {c for c in range(24) if parents[c] == k}
        ok += got in near
    assert inside >= 20 and ok == inside
    # background: image corners and far from the silhouette
    assert lab[:5, :5].max() == 0 and lab[-5:, -5:].max() == 0
    # silhouette area matches a direct point splat of the vertices (bounding box agrees ±2 px)
    pv = _project(verts)
    ys, xs = np.nonzero(lab)
    assert abs(xs.min() - pv[:, 0].min()) < 2 and abs(xs.max() - pv[:, 0].max()) < 2
    assert abs(ys.min() - pv[:, 1].min()) < 2 and abs(ys.max() - pv[:, 1].max()) < 2


def test_occluding_forearm_wins_over_torso(body):
    tpose = render_part_labels(_pose(body)[0], body.faces, body.vertex_parts, F, size=SIZE)
    # left upper arm forward (towards the camera), forearm across the chest
    verts, joints = _pose(body, {16: (0, -np.pi / 2, 0), 18: (0, -np.pi / 2, 0)})
    assert joints[20, 2] < joints[9, 2] - 0.15            # wrist nearer the camera than spine3
    lab = render_part_labels(verts, body.faces, body.vertex_parts, F, size=SIZE)
    torso = np.isin(tpose, [1, 4, 7, 10, 14, 15])          # pelvis, spines, collars in the T-pose
    forearm_on_torso = (lab == 19) & torso                 # label 19 = part 18 (left forearm)
    assert forearm_on_torso.sum() > 100
    # the forearm's middle projects onto the forearm, not the torso behind it
    mid = (joints[18] + joints[20]) / 2
    u, v = np.round(_project(mid[None])[0]).astype(int)
    assert lab[v, u] == 19 and tpose[v, u] in (4, 7, 10, 13, 14, 15)


def test_batch_equals_singles_and_torch_input(body):
    v1, _ = _pose(body)
    v2, _ = _pose(body, {1: (0.5, 0, 0), 17: (0, 0, 1.0)})
    both = render_part_labels(torch.tensor(np.stack([v1, v2])), body.faces, body.vertex_parts,
                              F, size=SIZE)
    assert both.shape == (2, SIZE, SIZE)
    assert (both[0] == render_part_labels(v1, body.faces, body.vertex_parts, F, size=SIZE)).all()
    assert (both[1] == render_part_labels(v2, body.faces, body.vertex_parts, F, size=SIZE)).all()
    assert (both[0] != both[1]).sum() > 50


def test_rasterizer_two_triangles_depth_and_coverage():
    # a far square (two triangles) and a near small triangle inside it; pixel centres are integers
    v = np.array([[-1, -1, 10], [1, -1, 10], [1, 1, 10], [-1, 1, 10],
                  [-0.2, -0.2, 5], [0.2, -0.2, 5], [0, 0.2, 5]], float)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]])
    ids = rasterize_faces(v, f, focal_length=10.0, cx=10.0, cy=10.0, size=21)
    assert ids[10, 10] == 2                                 # near triangle wins at the centre
    # far square spans u, v in [9, 11] → pixel centres 9..11 × 9..11 covered (3×3)
    assert ids[0, 0] == -1 and ids[10, 8] == -1 and ids[9, 9] in (0, 1)
    assert (ids >= 0).sum() == 9 and (ids == 2).sum() >= 1
    # reversed depths: the square is nearer, the small triangle disappears
    v2 = v.copy()
    v2[4:, 2] = 20
    ids2 = rasterize_faces(v2, f, 10.0, 10.0, 10.0, 21)
    assert (ids2 == 2).sum() == 0 and (ids2 >= 0).sum() == 9


def test_face_parts_majority_and_translation_estimate(body):
    parts = face_parts(np.array([[0, 1, 2], [0, 1, 1], [0, 0, 1]]), np.array([5, 7, 9]))
    assert parts.tolist() == [5, 7, 5]
    _, joints = _pose(body)
    joints0 = joints - T
    kp = np.concatenate([(_project(joints) - SIZE / 2) / (SIZE / 2), np.ones((24, 1))], 1)
    t = estimate_crop_translation(joints0, kp, F, SIZE)
    assert np.allclose(t, T, atol=1e-3)
    kp[4:, 2] = 0
    kp[:4, 2] = 0
    assert estimate_crop_translation(joints0, kp, F, SIZE) is None
