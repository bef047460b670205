"""The per-call-overhead rewrite of the smoother (pare_ros.tracking.smoothing, .so3, .one_euro)
changes no result: against those three modules as they were before it (loaded from git at
``REFERENCE_COMMIT`` as a separate package), long random sequences give the same outputs to
1e-12 relative (rotations, translations, betas, velocities and their covariances, predictions)
and identical decisions (held, velocity_valid, frames). The sequences mix 1–8 people, random
walks with 180° flips and depth outliers, real jumps, missed frames, gaps past ``gap_reset``,
dropped and new tracks, repeated stamps, partial (and NaN) visibility, float32 and noisy or
reflected rotations, with and without weights and viewing rays. Skipped without git history."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import git_modules
from pare_ros.tracking import one_euro, smoothing, so3

REFERENCE_COMMIT = "1a3304a22c521079283dac8ac364c40ff516a7e8"   # the last commit before the rewrite
MODULES = ("smoothing", "so3", "one_euro")
CLOSE = ("rotmats", "axis_angle", "transl", "betas", "velocity", "velocity_cov")
EXACT = ("track_ids", "velocity_valid", "frames", "held")


@pytest.fixture(scope="module")
def ref():
    """The reference modules (loaded from git by test/git_modules.py), by name."""
    try:
        loaded = git_modules.load(REFERENCE_COMMIT, ("tracking.so3", "tracking.one_euro", "tracking.smoothing"))
    except RuntimeError:
        pytest.skip("the reference commit is not available (no git history)")
    return {name: getattr(loaded, name) for name in MODULES}


def _close(got, want, what):
    """|got − want| ≤ 1e-12·(|want| + max|want|): relative to the value and to its array's scale."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, what
    scale = np.abs(want).max(initial=0.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * scale, err_msg=what)


def _rotations(rng, rotvecs, kind):
    """Rotation matrices [n,24,3,3] as a network gives them: float32, or noisy float64 (SVD
    path of the projection), occasionally one reflected matrix."""
    m = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(rotvecs.shape[:-1] + (3, 3))
    if kind == "noisy":
        m = m + rng.normal(0, 0.05, m.shape)
        if rng.random() < 0.2:
            m[rng.integers(len(m)), rng.integers(1, 24)] *= -1                  # det −1: reflected
        return m
    return m.astype(np.float32)


def _sequence(seed: int, n_frames: int = 320):
    """Calls of one scenario: ("update", ids, stamp, rotmats, transl, betas, vis, weights, rays)
    and ("drop", id); the people come and go, some estimates are outliers."""
    rng = np.random.default_rng(seed)
    people = int(rng.integers(1, 9))
    period = float(rng.choice([1 / 30, 1 / 15, 0.1, 1 / 3]))
    kind = "noisy" if seed % 3 == 2 else "float32"
    with_vis, with_weights, with_rays = rng.random(3) < [0.7, 0.6, 0.6]
    pos = rng.normal(0, 1, (people, 3)) + [0, 0, 4]
    vel = rng.normal(0, 0.8, (people, 3))
    pose = rng.normal(0, 0.5, (people, 24, 3))
    ids = np.arange(people)
    next_id = people
    away = np.zeros(people)                                      # s until a person is seen again
    t = 0.0
    for _ in range(n_frames):
        u = rng.random()
        dt = 0.0 if u < 0.03 else period * rng.uniform(0.8, 1.2) if u < 0.95 else rng.choice([0.7, 1.5, 4.0])
        t += dt
        pos += vel * dt
        pose += rng.normal(0, 0.3, pose.shape) * np.sqrt(dt)
        away = np.maximum(away - dt, 0)
        for i in range(people):
            v = rng.random()
            if v < 0.005:                                         # the tracker deletes the track
                yield ("drop", int(ids[i]))
                ids[i], next_id = next_id, next_id + 1
            elif v < 0.015:                                       # hidden for a while
                away[i] = rng.choice([0.3, 1.2, 3.5])
            elif v < 0.02:                                        # a real jump (tracker confusion)
                pos[i] += rng.normal(0, 1, 3)
        seen = np.nonzero((away == 0) & (rng.random(people) > 0.1))[0]
        if len(seen) == 0 or rng.random() < 0.01:                # nobody, or an empty update
            yield ("update", [], t, np.zeros((0, 24, 3, 3)), np.zeros((0, 3)), np.zeros((0, 10)), None, None, None)
            continue
        seen = rng.permutation(seen)                              # rows in any order
        z = pos[seen] + rng.normal(0, 0.02, (len(seen), 3))
        rot = _rotations(rng, pose[seen], kind)
        for i in range(len(seen)):
            v = rng.random()
            if v < 0.04:
                rot[i, 0] = rot[i, 0] @ np.diag([-1.0, 1.0, -1.0])               # 180° root flip
            elif v < 0.08:
                z[i] *= 1 + 1.5 / np.linalg.norm(z[i])                           # +1.5 m deeper
        vis = rng.random((len(seen), 24)) if with_vis else None
        if vis is not None and rng.random() < 0.1:
            vis[0, :3] = [np.nan, np.inf, -1.0]
        weights = rng.uniform(-0.2, 1, len(seen)) if with_weights else None
        rays = z + rng.normal(0, 0.1, z.shape) if with_rays else None
        betas = rng.normal(0, 1, (len(seen), 10)).astype(np.float32)
        yield ("update", ids[seen].tolist(), t, rot, z.astype(np.float32), betas, vis, weights, rays)


@pytest.mark.parametrize("seed", range(9))
def test_smoother_outputs_equal_the_reference(ref, seed):
    new, old = smoothing.BodySmoother(), ref["smoothing"].BodySmoother()
    held = restarted = 0
    for call in _sequence(seed):
        if call[0] == "drop":
            new.drop(call[1])
            old.drop(call[1])
            continue
        _, ids, stamp, *args = call
        got = new.update(ids, stamp, *args[:-1], camera_to_person=args[-1])
        want = old.update(ids, stamp, *args[:-1], camera_to_person=args[-1])
        for name in EXACT:
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=f"{name} at t={stamp}")
        for name in CLOSE:
            _close(getattr(got, name), getattr(want, name), f"{name} at t={stamp}")
        for a, b in zip(new.predict(ids, stamp + 0.05), old.predict(ids, stamp + 0.05)):
            _close(a, b, f"predict at t={stamp}")
        held += int(want.held.sum())
        restarted += int((~want.velocity_valid).sum())
        assert len(new) == len(old)
    assert held > 0 and restarted > 0                            # the branches were taken


def test_so3_functions_equal_the_reference(ref):
    rng = np.random.default_rng(7)
    angles = np.concatenate([rng.uniform(0, np.pi, 300), [0.0, 1e-12, np.pi, np.pi - 1e-9]])
    axes = rng.normal(size=(len(angles), 3))
    rotvecs = axes / np.linalg.norm(axes, axis=1, keepdims=True) * angles[:, None]
    m = Rotation.from_rotvec(rotvecs).as_matrix()
    r = ref["so3"]
    _close(so3.exp(rotvecs), r.exp(rotvecs), "exp")
    _close(so3.log(m), r.log(m), "log")
    small = Rotation.from_rotvec(rotvecs * 0.1).as_matrix()                 # all < 90°: no gather
    _close(so3.log(small), r.log(small), "log of small angles")
    for name, mats in [("float32", m.astype(np.float32)), ("noisy", m + rng.normal(0, 0.05, m.shape)),
                       ("reflected", m * [[-1], [1], [1]]), ("mixed", np.concatenate([m[:5], -m[5:7]])),
                       ("singular", np.zeros((2, 3, 3))), ("empty", np.zeros((0, 3, 3)))]:
        got, want = so3.nearest_rotation(mats), r.nearest_rotation(mats)
        _close(got, want, f"nearest_rotation {name}")
    mats = rng.normal(size=(50, 3, 3))
    _close(so3._det(mats), np.linalg.det(mats), "det")


def test_so3_one_euro_step_equals_the_reference(ref):
    rng = np.random.default_rng(8)
    n = 48
    r_hat = Rotation.random(n, random_state=1).as_matrix()
    r = r_hat @ Rotation.from_rotvec(rng.normal(0, 0.4, (n, 3))).as_matrix()
    w_hat = rng.normal(0, 2, (n, 3))
    scale = rng.uniform(0.1, 1, n)
    step = ref["one_euro"].so3_one_euro_step
    for dt, s in [(0.1, None), (rng.uniform(0.01, 0.5, n), scale), (1 / 30, scale)]:
        got = one_euro.so3_one_euro_step(r_hat, w_hat, r, dt, 1.5, 0.5, 1.0, s)
        want = step(r_hat, w_hat, r, dt, 1.5, 0.5, 1.0, s)
        for a, b in zip(got, want):
            _close(a, b, "so3_one_euro_step")
    # Stacked [P,24] with one interval per person [P,1], as the smoother calls it.
    dt = rng.uniform(0.01, 0.5, 2)
    got = one_euro.so3_one_euro_step(r_hat.reshape(2, 24, 3, 3), w_hat.reshape(2, 24, 3), r.reshape(2, 24, 3, 3),
                                     dt[:, None], 1.5, 0.5, 1.0, scale.reshape(2, 24))
    want = step(r_hat, w_hat, r, np.repeat(dt, 24), 1.5, 0.5, 1.0, scale)
    _close(got[0].reshape(n, 3, 3), want[0], "stacked rotations")
    _close(got[1].reshape(n, 3), want[1], "stacked rates")


def test_a_copied_smoother_continues_alike():
    """The gather buffers kept per batch size are not shared by (nor stale in) a deep copy."""
    calls = [c for c in _sequence(3, 60) if c[0] == "update" and c[1]]
    a = smoothing.BodySmoother()
    for _, ids, stamp, *args in calls[:30]:
        a.update(ids, stamp, *args[:-1], camera_to_person=args[-1])
    b = copy.deepcopy(a)
    for _, ids, stamp, *args in calls[30:]:
        got = a.update(ids, stamp, *args[:-1], camera_to_person=args[-1])
        want = b.update(ids, stamp, *args[:-1], camera_to_person=args[-1])
        for name in CLOSE + EXACT:
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


def test_rejected_updates_equal_the_reference(ref):
    """Repeated ids, non-finite inputs and a stamp going back raise ValueError in both and
    leave the state as it was: the next update agrees."""
    calls = [c for c in _sequence(4, 40) if c[0] == "update" and len(c[1]) >= 2]
    new, old = smoothing.BodySmoother(), ref["smoothing"].BodySmoother()
    for _, ids, stamp, *args in calls[:20]:
        for sm in (new, old):
            sm.update(ids, stamp, *args[:-1], camera_to_person=args[-1])
    _, ids, stamp, rot, z, betas, vis, weights, rays = calls[20]
    nan_z = np.array(z, dtype=np.float64)
    nan_z[0, 2] = np.nan
    for bad in ([ids[0]] * len(ids), stamp, rot, z), (ids, stamp, rot, nan_z), (ids, calls[0][2] - 1, rot, z):
        for sm in (new, old):
            with pytest.raises(ValueError):
                sm.update(bad[0], bad[1], bad[2], bad[3], betas, vis, weights, camera_to_person=rays)
    got = new.update(ids, stamp, rot, z, betas, vis, weights, camera_to_person=rays)
    want = old.update(ids, stamp, rot, z, betas, vis, weights, camera_to_person=rays)
    for name in CLOSE:
        _close(getattr(got, name), getattr(want, name), name)
    for name in EXACT:
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
