"""finite_mask (one isfinite for all people) against the per-field check it replaced."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pare_ros.finite_check import FINITE_FIELDS, finite_mask


def reference(body) -> bool:
    return all(np.isfinite(getattr(body, name)).all() for name in FINITE_FIELDS
               if getattr(body, name, None) is not None)


def body(rng, **overrides):
    fields = dict(betas=rng.normal(size=10), rotmats=rng.normal(size=(24, 3, 3)).astype(np.float32),
                  transl=rng.normal(size=3).astype(np.float32), joints3d=rng.normal(size=(24, 3)),
                  keypoints3d=rng.normal(size=(49, 3)), joints2d=rng.normal(size=(24, 2)).astype(np.float32),
                  vertices=None, score=float("nan"))               # not a checked field
    fields.update(overrides)
    return SimpleNamespace(**fields)


@pytest.mark.parametrize("field", FINITE_FIELDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_each_field_and_value_is_caught_for_the_right_person(field, bad):
    rng = np.random.default_rng(0)
    bodies = [body(rng, vertices=rng.normal(size=(6890, 3)).astype(np.float32)) for _ in range(4)]
    getattr(bodies[2], field).reshape(-1)[-1] = bad
    assert finite_mask(bodies) == [reference(b) for b in bodies] == [True, True, False, True]


def test_none_missing_empty_and_huge_values():
    rng = np.random.default_rng(1)
    bodies = [body(rng), body(rng, vertices=None, betas=None), SimpleNamespace(),
              body(rng, joints3d=np.full((24, 3), 1e308)),            # finite, though its sum is not
              body(rng, transl=np.zeros((0,))), body(rng, keypoints3d=[[1.0, float("nan"), 0.0]])]
    assert finite_mask(bodies) == [reference(b) for b in bodies] == [True, True, True, True, True, False]
    assert finite_mask([]) == [] and finite_mask([SimpleNamespace(), SimpleNamespace()]) == [True, True]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_each_dtype_at_its_largest_finite_values(dtype):
    """Exact, not a sum: float32's 3.4e38 (whose square or float32 sum overflows), float64's
    1.8e308, float16's 65504 are finite; inf, -inf and NaN are not, in small and mesh-sized
    arrays (the latter checked in their own dtype)."""
    rng = np.random.default_rng(2)
    big = np.finfo(dtype).max
    for size in (7, 20670):
        for bad in (None, np.inf, -np.inf, np.nan):
            values = np.full(size, big, dtype)
            values[::2] = -big
            if bad is not None:
                values[size // 2] = bad
            bodies = [body(rng, vertices=rng.normal(size=(6890, 3)).astype(np.float32)),
                      body(rng, **{("betas" if size == 7 else "vertices"): values}), body(rng)]
            assert finite_mask(bodies) == [reference(b) for b in bodies] == [True, bad is None, True]


def test_random_mixtures_equal_the_per_field_check():
    rng = np.random.default_rng(3)
    specials = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e308, 0.0])
    for _ in range(200):
        bodies = []
        for _ in range(rng.integers(0, 6)):
            fields = {}
            for name in FINITE_FIELDS:
                if rng.random() < 0.2:
                    continue                                  # missing (None) field
                size = 20670 if name == "vertices" else int(rng.integers(0, 300))
                dtype = rng.choice([np.float32, np.float64, np.int64])
                values = rng.normal(size=size)
                if size and rng.random() < 0.15:
                    values[rng.integers(size)] = rng.choice(specials)
                with np.errstate(over="ignore", invalid="ignore"):
                    fields[name] = values.astype(dtype) if dtype != np.int64 else np.nan_to_num(values).astype(np.int64)
            bodies.append(SimpleNamespace(**fields))
        assert finite_mask(bodies) == [reference(b) for b in bodies]
