"""The host-side (float64 NumPy) placement of pare_ros.camera against independent references:
the former Torch formulation (kept here), NumPy's generic least squares, SciPy's rotations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_ros import camera, placement_refine
from pare_ros.camera import Intrinsics, crop_to_camera, pare_crop_projection, ray_rotation


# --------------------------------------------------------------------------------------------
# The former Torch implementation (issue 10), verbatim in substance: the reference.
# --------------------------------------------------------------------------------------------
def _ref_project(points, k):
    z = points[..., 2].clamp_min(1e-6)
    return torch.stack((k.fx * points[..., 0] / z + k.cx, k.fy * points[..., 1] / z + k.cy), dim=-1)


def _ref_crop_projection(points, cam):
    s, tx, ty = cam.unbind(-1)
    tz = 2 * 5000.0 / (224.0 * s.abs().clamp_min(1e-4))
    p = points + torch.stack((tx, ty, tz), dim=-1)[:, None]
    return 5000.0 / 112.0 * p[..., :2] / p[..., 2:].clamp_min(1e-6)


def _ref_rays(pixels, k):
    x, y = (pixels[..., 0] - k.cx) / k.fx, (pixels[..., 1] - k.cy) / k.fy
    d = torch.stack((x, y, torch.ones_like(x)), dim=-1)
    return d / d.norm(dim=-1, keepdim=True)


def _ref_ray_rotation(pixels, k):
    d = _ref_rays(pixels, k)
    dx, dy, dz = d.unbind(-1)
    zero = torch.zeros_like(dx)
    m = torch.stack((zero, zero, dx, zero, zero, dy, -dx, -dy, zero), dim=-1).reshape(*d.shape[:-1], 3, 3)
    return torch.eye(3, dtype=d.dtype).expand_as(m) + m + (m @ m) / (1 + dz)[..., None, None]


def _ref_refine(points_crop, cam, centres, sides, k, r_ray, j0, transl, iterations):
    target = centres[:, None] + sides[:, None, None] / 2 * _ref_crop_projection(points_crop, cam)
    p = (points_crop - j0[:, None]) @ r_ray.transpose(1, 2) + j0[:, None]
    du, dv = target[..., 0] - k.cx, target[..., 1] - k.cy
    zeros, fx, fy = torch.zeros_like(du), torch.full_like(du, k.fx), torch.full_like(du, k.fy)
    a = torch.cat((torch.stack((fx, zeros, -du), -1), torch.stack((zeros, fy, -dv), -1)), dim=1)
    b = torch.cat((du * p[..., 2] - k.fx * p[..., 0], dv * p[..., 2] - k.fy * p[..., 1]), dim=1)
    for _ in range(iterations):
        w2 = torch.cat((1.0 / (p[..., 2] + transl[:, None, 2]).clamp_min(1e-3),) * 2, dim=1) ** 2
        ata = torch.einsum("nki,nk,nkj->nij", a, w2, a)
        atb = torch.einsum("nki,nk,nk->ni", a, w2, b)
        ridge = 1e-9 * ata.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-12)[:, None, None]
        new = torch.linalg.solve_ex(ata + ridge * torch.eye(3, dtype=a.dtype),
                                    (atb + ridge[:, :, 0] * transl)[..., None])[0][..., 0]
        ok = torch.isfinite(new).all(-1, keepdim=True) & ((new[:, 2:3] + p[..., 2].min(1, keepdim=True).values) > 1e-2)
        transl = torch.where(ok, new, transl)
    return transl


def _ref_fit(points_crop, crop_xy):
    kk = 5000.0 / 112.0
    x, y = crop_xy.unbind(-1)
    ones, zeros = torch.ones_like(x), torch.zeros_like(x)
    a = torch.cat((torch.stack((points_crop[..., 0] - x * points_crop[..., 2] / kk, ones, zeros), -1),
                   torch.stack((points_crop[..., 1] - y * points_crop[..., 2] / kk, zeros, ones), -1)), 1)
    sol = torch.linalg.solve_ex(a.transpose(1, 2) @ a, a.transpose(1, 2) @ torch.cat((x, y), 1)[..., None])[0][..., 0]
    return torch.stack((sol[:, 0], sol[:, 1] / sol[:, 0], sol[:, 2] / sol[:, 0]), dim=-1)


def _ref_match(points_crop, cam, centres, sides, k, r_ray, j0, transl, iterations):
    n = transl.shape[0]
    p = (points_crop - j0[:, None]) @ r_ray.transpose(1, 2) + j0[:, None]
    p4, crop4, c4, half4 = (x.repeat(4, *([1] * (x.dim() - 1))) for x in (p, points_crop, centres, sides / 2))
    eps = 1e-5
    offsets = torch.cat((torch.zeros(1, 3, dtype=transl.dtype), eps * torch.eye(3, dtype=transl.dtype)))
    target = torch.stack((cam[:, 0].abs().clamp_min(1e-6).log(), cam[:, 1], cam[:, 2]), -1)
    nearest = p[..., 2].min(1).values
    for _ in range(iterations):
        t4 = (transl[None] + offsets[:, None]).reshape(4 * n, 3)
        uv = _ref_project(p4 + t4[:, None], k)
        fitted = _ref_fit(crop4, (uv - c4[:, None]) / half4[:, None, None])
        res = torch.stack((fitted[:, 0].abs().clamp_min(1e-6).log(), fitted[:, 1], fitted[:, 2]), -1)
        res = res.reshape(4, n, 3) - target
        step, info = torch.linalg.solve_ex(((res[1:] - res[:1]) / eps).permute(1, 2, 0), res[0][..., None])
        step = step[..., 0]
        new = transl - step
        ok = (info == 0) & torch.isfinite(new).all(-1) & ((new[:, 2] + nearest) > 1e-2) & \
            (step.norm(dim=-1) < 0.5 * transl[:, 2].abs().clamp_min(0.1))
        transl = torch.where(ok[:, None], new, transl)
    return transl


def _ref_crop_to_camera(root_rotmats, cam, centres, sides, k, rest_root, keypoints_crop=None,
                        iterations=2, match_iterations=3):
    half_scale = sides * cam[:, 0].abs().clamp_min(1e-4) / 2
    r_ray = _ref_ray_rotation(centres, k)
    d = _ref_rays(centres + half_scale[:, None] * (rest_root[:, :2] + cam[:, 1:]), k)
    transl = d * (math.sqrt(k.fx * k.fy) / (half_scale * d[:, 2] ** 1.5))[:, None] - rest_root
    if keypoints_crop is not None:
        transl = _ref_refine(keypoints_crop, cam, centres, sides, k, r_ray, rest_root, transl, iterations)
        if match_iterations > 0:
            transl = _ref_match(keypoints_crop, cam, centres, sides, k, r_ray, rest_root, transl, match_iterations)
    return r_ray, r_ray @ root_rotmats, transl


# --------------------------------------------------------------------------------------------
def _random_people(rng, n):
    """PARE-like inputs: root rotations, cameras, crops and a crop-frame body (24 keypoints)."""
    root = torch.from_numpy(Rotation.random(n, random_state=rng.integers(1 << 30)).as_matrix())
    cam = torch.from_numpy(np.stack([rng.uniform(0.4, 1.4, n), rng.normal(0, 0.15, n), rng.normal(0, 0.15, n)], 1))
    centres = torch.from_numpy(rng.uniform((0, 0), (1280, 720), (n, 2)))
    sides = torch.from_numpy(rng.uniform(80, 600, n))
    rest_root = torch.from_numpy(rng.normal((0, -0.2, 0), 0.03, (n, 3)))
    # A standing body's extent: ±0.3 m wide, 1.7 m tall, ±0.15 m deep, about the pelvis.
    body = rng.uniform((-0.3, -0.6, -0.15), (0.3, 1.1, 0.15), (n, 24, 3)) @ np.diag([1.0, -1.0, 1.0])
    keypoints = torch.from_numpy(body @ root.numpy().transpose(0, 2, 1)) + rest_root[:, None]
    return root, cam, centres, sides, rest_root, keypoints


@pytest.mark.parametrize("n", [1, 3, 8, 16])
def test_placement_equals_the_former_torch_formulation(n):
    rng = np.random.default_rng(n)
    for trial in range(6):
        k = Intrinsics(*rng.uniform((400, 400, 300, 200), (1200, 1200, 900, 500)))
        root, cam, centres, sides, rest_root, keypoints = _random_people(rng, n)
        for options in (dict(keypoints_crop=keypoints), dict(keypoints_crop=keypoints, match_iterations=0), {}):
            ours = crop_to_camera(root, cam, centres, sides, k, rest_root, **options)
            ref = _ref_crop_to_camera(root, cam, centres, sides, k, rest_root, **options)
            for got, want in zip((ours.ray_rotation, ours.global_orient, ours.transl), ref):
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-9)


def test_placement_keeps_dtype_device_and_rest_root():
    rng = np.random.default_rng(3)
    root, cam, centres, sides, rest_root, keypoints = (x.float() for x in _random_people(rng, 2))
    placement = crop_to_camera(root, cam, centres, sides, Intrinsics(600.0, 600.0, 640.0, 360.0), rest_root,
                               keypoints_crop=keypoints)
    for x in (placement.ray_rotation, placement.global_orient, placement.transl):
        assert x.dtype == torch.float32 and x.device == cam.device
    assert placement.rest_root is rest_root


def test_degenerate_inputs_stay_finite_and_in_front():
    """Untrained weights: zero / negative scale, a body collapsed onto one point, NaN-free."""
    rng = np.random.default_rng(4)
    root, cam, centres, sides, rest_root, keypoints = _random_people(rng, 4)
    cam[0, 0], cam[1, 0] = 0.0, -0.7
    keypoints[2] = rest_root[2]                              # every keypoint at the pelvis
    placement = crop_to_camera(root, cam, centres, sides, Intrinsics(600.0, 600.0, 640.0, 360.0), rest_root,
                               keypoints_crop=keypoints)
    assert torch.isfinite(placement.transl).all()
    assert ((placement.transl[:, None, 2] + keypoints[..., 2]) > 0).all()


def test_crop_camera_fit_is_the_least_squares_solution():
    """Closed form against NumPy's generic least squares of s·(X − x·Z/k) + s·t = x."""
    rng = np.random.default_rng(5)
    points = rng.normal(0, 0.5, (7, 24, 3))
    crop_xy = rng.uniform(-1, 1, (7, 24, 2))
    kk = 5000.0 / 112.0
    points_t, crop_t = points.transpose(0, 2, 1), crop_xy.transpose(0, 2, 1)          # coordinate-major
    got = placement_refine.fit_crop_camera(points_t[:, :2], points_t[:, 2:] / kk, crop_t)
    for m in range(7):
        a = np.zeros((48, 3))
        a[:24, 0] = points[m, :, 0] - crop_xy[m, :, 0] * points[m, :, 2] / kk
        a[24:, 0] = points[m, :, 1] - crop_xy[m, :, 1] * points[m, :, 2] / kk
        a[:24, 1] = a[24:, 2] = 1.0
        s, stx, sty = np.linalg.lstsq(a, np.r_[crop_xy[m, :, 0], crop_xy[m, :, 1]], rcond=None)[0]
        np.testing.assert_allclose(got[m], [math.log(abs(s)), stx / s, sty / s], rtol=0, atol=1e-10)
    # Leading dimensions broadcast: the points shared by a [4,N] batch of coordinates.
    batched = placement_refine.fit_crop_camera(points_t[:, :2], points_t[:, 2:] / kk, np.stack([crop_t] * 4))
    np.testing.assert_allclose(batched, np.stack([got] * 4), rtol=0, atol=1e-12)


def test_refinement_step_is_the_weighted_least_squares_solution():
    """One reweighting pass against NumPy's least squares of the pixel-weighted linear system."""
    rng = np.random.default_rng(6)
    k = Intrinsics(700.0, 655.0, 410.0, 300.0)
    root, cam, centres, sides, rest_root, keypoints = (x.numpy() for x in _random_people(rng, 5))
    turned = keypoints + rng.normal(0, 0.01, keypoints.shape)
    start = np.c_[rng.normal(0, 0.3, (5, 2)), rng.uniform(2, 6, 5)]
    got = placement_refine.refine_translation(keypoints.transpose(0, 2, 1), turned.transpose(0, 2, 1), cam, centres,
                                              sides, k, start, 1)
    target = centres[:, None] + sides[:, None, None] / 2 * pare_crop_projection(keypoints, cam)
    for i in range(5):
        du, dv = target[i, :, 0] - k.cx, target[i, :, 1] - k.cy
        w = 1 / (turned[i, :, 2] + start[i, 2])
        x, y, z = turned[i].T
        a = np.r_[np.c_[np.full(24, k.fx), np.zeros(24), -du], np.c_[np.zeros(24), np.full(24, k.fy), -dv]]
        b = np.r_[du * z - k.fx * x, dv * z - k.fy * y]
        a, b = a * np.r_[w, w][:, None], b * np.r_[w, w]
        # With the pull towards the start: ridge·|T − start|², ridge = 1e-9·trace(AᵀA).
        ridge = 1e-9 * (a * a).sum()
        a, b = np.r_[a, math.sqrt(ridge) * np.eye(3)], np.r_[b, math.sqrt(ridge) * start[i]]
        np.testing.assert_allclose(got[i], np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("gufunc", [True, False])
def test_solve_marks_only_the_singular_system(gufunc, monkeypatch):
    """NaN for the singular system only, through NumPy's solve gufunc (under crop_to_camera's
    error state) or, should a NumPy version lack it, np.linalg.solve."""
    if not gufunc:
        monkeypatch.setattr(placement_refine, "_lapack_solve", None)
    m = np.stack([np.eye(3) * 2, np.zeros((3, 3)), np.diag([1.0, 2.0, 4.0])])
    rng = np.random.default_rng(8)
    general = rng.normal(size=(5, 3, 3)), rng.normal(size=(5, 3))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = placement_refine._solve(m, np.ones((3, 3)))
        np.testing.assert_array_equal(placement_refine._solve(*general),
                                      np.linalg.solve(general[0], general[1][..., None])[..., 0])
    np.testing.assert_allclose(x[[0, 2]], [[0.5, 0.5, 0.5], [1.0, 0.5, 0.25]])
    assert np.isnan(x[1]).all()


def test_ray_rotation_matches_scipy_and_torch_in_torch_out():
    rng = np.random.default_rng(7)
    k = Intrinsics(650.0, 610.0, 330.0, 250.0)
    pixels = rng.uniform((-200, -200), (900, 700), (50, 2))
    rays = np.c_[(pixels - (k.cx, k.cy)) / (k.fx, k.fy), np.ones(50)]
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    ours = ray_rotation(pixels, k)
    for r, d in zip(ours, rays):
        want = Rotation.align_vectors([d], [[0.0, 0.0, 1.0]])[0].as_matrix()
        np.testing.assert_allclose(r, want, atol=1e-9)
    np.testing.assert_allclose(ours, _ref_ray_rotation(torch.from_numpy(pixels), k).numpy(), atol=1e-14)
    as_tensor = ray_rotation(torch.from_numpy(pixels).float(), k)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float32


def test_crop_projection_numpy_and_torch_agree_with_the_reference():
    rng = np.random.default_rng(8)
    points, cam = rng.normal(0, 0.6, (4, 30, 3)), np.c_[rng.uniform(-1, 1.5, 4), rng.normal(0, 0.2, (4, 2))]
    want = _ref_crop_projection(torch.from_numpy(points), torch.from_numpy(cam)).numpy()
    np.testing.assert_allclose(pare_crop_projection(points, cam), want, rtol=1e-14)
    got = pare_crop_projection(torch.from_numpy(points), torch.from_numpy(cam))
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-14)


def test_project_matches_the_reference():
    rng = np.random.default_rng(9)
    k = Intrinsics(700.0, 655.0, 410.0, 300.0)
    points = np.c_[rng.normal(0, 1, (40, 2)), rng.uniform(-0.1, 6, 40)]
    np.testing.assert_allclose(camera.project(points, k), _ref_project(torch.from_numpy(points), k).numpy(),
                               rtol=1e-13)
