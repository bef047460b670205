"""BodySmoother batches its people but keeps their tracks independent: one update of P people
must equal P updates of one person each, whatever mix of new, running, re-found (after
``gap_reset``), repeated-stamp, held-back (outlier) and re-anchored tracks one frame holds, and
whether the inputs are float32 network outputs or noisy matrices (projection's two paths)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pare_ros.tracking import BodySmoother

FIELDS = ("rotmats", "axis_angle", "transl", "betas", "velocity", "velocity_cov", "velocity_valid", "frames", "held")


def frames(seed: int, rot_noise: float, n_frames: int = 150, people: int = 6):
    """(ids, stamp, rotmats, transl, betas, visibility, weights) per frame: walkers seen by a
    random subset each frame, irregular intervals (incl. repeats and gaps > gap_reset), 180°
    root flips and depth outliers."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(0, 1, (people, 3)) + [0, 0, 4]
    vel = rng.normal(0, 0.8, (people, 3))
    pose = rng.normal(0, 0.6, (people, 24, 3))
    t = 0.0
    for _ in range(n_frames):
        dt = rng.choice([1 / 30, 0.1, 0.2, 0.0, 0.5, 4.0], p=[.55, .2, .1, .04, .07, .04])
        t += dt
        pos += vel * dt
        pose += rng.normal(0, 0.15, pose.shape) * np.sqrt(dt)
        sel = np.sort(rng.choice(people, rng.integers(1, people + 1), replace=False))
        rot = Rotation.from_rotvec(pose[sel].reshape(-1, 3)).as_matrix().reshape(-1, 24, 3, 3)
        rot = (rot + rng.normal(0, rot_noise, rot.shape)).astype(np.float32 if rot_noise == 0 else np.float64)
        z = pos[sel] + rng.normal(0, 0.02, (len(sel), 3))
        for i in range(len(sel)):
            u = rng.random()
            if u < 0.05:
                rot[i, 0] = rot[i, 0] @ np.diag([-1.0, 1.0, -1.0])                  # 180° about y
            elif u < 0.10:
                z[i] *= 1 + 1.5 / np.linalg.norm(z[i])                               # +1.5 m deeper
        vis = rng.random((len(sel), 24)) if rng.random() < 0.7 else None
        yield (sel + 1).tolist(), t, rot, z, rng.normal(0, 1, (len(sel), 10)), vis, rng.random(len(sel))


@pytest.mark.parametrize("rot_noise", [0.0, 1e-3])
def test_one_batched_update_equals_per_person_updates(rot_noise):
    batched, single = BodySmoother(), BodySmoother()
    held = 0
    for ids, t, rot, z, betas, vis, w in frames(1, rot_noise):
        out = batched.update(ids, t, rot, z, betas, vis, w)
        held += int(out.held.sum())
        for i, track in enumerate(ids):
            one = single.update([track], t, rot[i:i + 1], z[i:i + 1], betas[i:i + 1],
                                None if vis is None else vis[i:i + 1], w[i:i + 1])
            for f in FIELDS:
                np.testing.assert_allclose(getattr(one, f)[0], getattr(out, f)[i], rtol=0, atol=1e-12, err_msg=f)
    assert held > 5                                        # the outlier paths really ran
