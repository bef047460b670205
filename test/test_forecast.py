"""pare_ros.tracking.forecast: the motion model (known answers) and its accuracy on the
ground-truth harness against the zero-velocity baseline (the issue's acceptance bar)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pare_ros.tracking import forecast_eval
from pare_ros.tracking.forecast import (Forecaster, ForecastParams, forecast_root, forecast_sigma,
                                        swept_points, zero_velocity)

UP = (0.0, 0.0, 1.0)


def test_constant_velocity_positions_and_times():
    p = ForecastParams(horizon=1.5, step=0.5, still_speed=0.0, still_sigmas=0.0)
    f = forecast_root(10.0, [1.0, 2.0, 0.9], [1.2, -0.4, 0.0], p)
    np.testing.assert_allclose(f.times, [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(f.positions[-1], [1.0 + 1.8, 2.0 - 0.6, 0.9])
    np.testing.assert_allclose(f.at(0.75), [1.9, 1.7, 0.9])
    assert f.stamp == 10.0


def test_vertical_velocity_is_dropped_in_a_fixed_frame_only():
    v = [1.0, 0.0, 0.3]
    world = forecast_root(0.0, [0, 0, 0], v, ForecastParams(step=0.5, horizon=1.0, up=UP, still_speed=0))
    cam = forecast_root(0.0, [0, 0, 0], v, ForecastParams(step=0.5, horizon=1.0, still_speed=0))
    np.testing.assert_allclose(world.positions[-1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(cam.positions[-1], [1.0, 0.0, 0.3])


def test_dead_band_invalid_velocity_and_zero_velocity_baseline():
    p = ForecastParams(step=0.5, horizon=1.0, still_speed=0.4)
    assert np.allclose(forecast_root(0, [1, 1, 1], [0.3, 0.0, 0.0], p).positions, [1, 1, 1])
    assert not np.allclose(forecast_root(0, [1, 1, 1], [0.5, 0.0, 0.0], p).positions[-1], [1, 1, 1])
    assert np.allclose(forecast_root(0, [1, 1, 1], [2.0, 0, 0], p, velocity_valid=False).positions, [1, 1, 1])
    assert np.allclose(forecast_root(0, [1, 1, 1], [2.0, 0, 0], zero_velocity(p)).positions, [1, 1, 1])


def test_speed_within_its_own_uncertainty_counts_as_standing():
    p = ForecastParams(step=0.5, horizon=1.0, still_speed=0.0, still_sigmas=1.5)
    v = [0.6, 0.0, 0.0]
    noisy = np.diag([0.5 ** 2, 0.01, 0.01])      # σ 0.5 m/s along the motion: 0.6 < 1.5·0.5
    sure = np.diag([0.1 ** 2, 0.01, 0.01])
    assert np.allclose(forecast_root(0, [0, 0, 0], v, p, velocity_cov=noisy).positions, 0)
    assert forecast_root(0, [0, 0, 0], v, p, velocity_cov=sure).positions[-1, 0] == pytest.approx(0.6)
    assert forecast_root(0, [0, 0, 0], v, p).positions[-1, 0] == pytest.approx(0.6)   # no covariance


def test_speed_drop_test_needs_the_previous_speed():
    p = ForecastParams(step=0.5, horizon=1.0, still_speed=0.0, still_sigmas=0.0, stop_ratio=0.55)
    v = [0.6, 0.0, 0.0]
    assert np.allclose(forecast_root(0, [0, 0, 0], v, p, previous_speed=1.3).positions, 0)     # 0.6 < 0.55·1.3
    assert forecast_root(0, [0, 0, 0], v, p, previous_speed=1.0).positions[-1, 0] == pytest.approx(0.6)
    assert forecast_root(0, [0, 0, 0], v, p).positions[-1, 0] == pytest.approx(0.6)           # no memory: off
    off = replace(p, stop_ratio=0.0)
    assert forecast_root(0, [0, 0, 0], v, off, previous_speed=1.3).positions[-1, 0] == pytest.approx(0.6)


def test_forecaster_remembers_each_tracks_previous_frame():
    p = ForecastParams(step=0.5, horizon=1.0, still_speed=0.0, still_sigmas=0.0, up=UP)
    fc = Forecaster()
    assert fc.forecast(1, 0.0, [0, 0, 0], [1.3, 0, 0.5], p).positions[-1, 0] == pytest.approx(1.3)
    assert fc.forecast(2, 0.0, [0, 0, 0], [0.6, 0, 0], p).positions[-1, 0] == pytest.approx(0.6)
    stop = fc.forecast(1, 0.1, [0, 0, 0], [0.6, 0, 0], p)                 # 1.3 → 0.6 m/s in one frame
    assert np.allclose(stop.positions, 0) and np.allclose(stop.velocity, 0)
    assert np.allclose(fc.forecast(1, 0.1, [0, 0, 0], [0.6, 0, 0], p).positions, 0)   # same frame, same answer
    assert fc.forecast(2, 0.1, [0, 0, 0], [0.6, 0, 0], p).positions[-1, 0] == pytest.approx(0.6)
    # the previous frame must be recent (stop_window): after a gap the test is off
    assert fc.forecast(2, 1.0, [0, 0, 0], [0.2, 0, 0], p).positions[-1, 0] == pytest.approx(0.2)
    fc.retain([1])
    assert len(fc) == 1
    fc.reset()
    assert len(fc) == 0


def test_damped_model_travels_tau_times_speed_at_most():
    p = ForecastParams(step=0.1, horizon=30.0, damping=2.0, still_speed=0)
    f = forecast_root(0, [0, 0, 0], [1.0, 0, 0], p)
    assert f.positions[-1, 0] == pytest.approx(0.5, abs=1e-6)    # v·τ, τ = 0.5 s
    assert np.all(np.diff(f.positions[:, 0]) >= 0) and np.all(np.diff(f.positions[:20, 0]) > 0)


def test_uncertainty_grows_as_the_white_acceleration_model():
    p = ForecastParams(position_sigma=0.05, velocity_sigma=0.1, accel_sigma=0.6)
    t = p.times()
    s = forecast_sigma(t, p)
    assert s[0] == pytest.approx(0.05)
    assert np.all(np.diff(s) > 0)
    assert s[-1] == pytest.approx(np.sqrt(0.05 ** 2 + 0.15 ** 2 + 0.36 * 1.5 ** 3 / 3))


def test_swept_points_cover_each_persons_future_body():
    p = ForecastParams(step=0.5, horizon=1.0, still_speed=0)
    a = forecast_root(0, [0, 0, 1], [1.0, 0, 0], p)
    b = forecast_root(0, [5, 5, 1], [0, 0, 0], p)
    offsets = [np.array([[0, 0, 0], [0, 0, 0.8]]), None]
    pts = swept_points([a, b], offsets)
    assert pts.shape == (3 * 2 + 3 * 1, 5)
    np.testing.assert_allclose(pts[4:6, :3], [[1.0, 0, 1], [1.0, 0, 1.8]])   # a at t = 1.0
    np.testing.assert_allclose(pts[4:6, 3], 1.0)
    assert swept_points([]).shape == (0, 5)


def _fde(results, kind, model, h=1.0):
    return results[kind][model][h][1]


# The acceptance, per scene at 1.0 s: FDE below zero velocity on walking scenes, at most
# 10 % above it on stopping scenes. Two stopping scenes cannot meet it with any model that
# forecasts from the current motion state: most of their scored forecasts start in the last
# second before an unannounced stop or at the stop itself (docs/planners.md, forecast section).
# For those the test asserts that even the true velocity (a perfect motion-state test) fails.
UNREACHABLE = ("stopping: walk 1 s, stand 3 s", "stopping: walk 0.5 s, stop")


@pytest.fixture(scope="module")
def harness_results():
    node = ForecastParams(up=UP)
    models = {"zv": zero_velocity(node), "cv": replace(node, still_speed=0.0, still_sigmas=0.0, stop_ratio=0.0),
              "before": replace(node, stop_ratio=0.0), "node": node, "ref": forecast_eval.oracle(node)}
    return forecast_eval.evaluate(models, seeds=(0,), horizons=(1.0,), per_scene=True)


def test_harness_walking_beats_zero_velocity(harness_results):
    walking = [k for k in harness_results if k.startswith("walking")]
    assert len(walking) >= 4
    for key in walking:
        assert _fde(harness_results, key, "node") < 0.8 * _fde(harness_results, key, "zv"), key


def test_harness_stopping_within_ten_percent_of_zero_velocity(harness_results):
    stopping = [k for k in harness_results if k.startswith("stopping") and k not in UNREACHABLE]
    assert len(stopping) >= 6            # 3 original scenes + the speed variants
    for key in stopping:
        assert _fde(harness_results, key, "node") <= 1.1 * _fde(harness_results, key, "zv"), key


def test_harness_stopping_bound_unreachable_even_for_the_true_velocity(harness_results):
    for key in UNREACHABLE:
        assert _fde(harness_results, key, "ref") > 1.1 * _fde(harness_results, key, "zv"), key
        # the node is within 20 % of that bound and no worse than before the speed-drop test
        assert _fde(harness_results, key, "node") <= 1.2 * _fde(harness_results, key, "ref"), key
        assert _fde(harness_results, key, "node") <= _fde(harness_results, key, "before") + 1e-9, key


def test_harness_speed_drop_test_costs_walking_nothing_and_helps_stopping(harness_results):
    for key in harness_results:
        if key.startswith(("walking", "turning", "standing")):
            assert _fde(harness_results, key, "node") <= 1.03 * _fde(harness_results, key, "before"), key
    stop = [k for k in harness_results if k.startswith("stopping")]
    assert np.mean([_fde(harness_results, k, "node") for k in stop]) < np.mean(
        [_fde(harness_results, k, "before") for k in stop])


def test_harness_dead_band_helps_standing_people(harness_results):
    key = "standing: standing 4 m"
    assert _fde(harness_results, key, "node") < 0.5 * _fde(harness_results, key, "cv")


def test_eval_truth_is_the_path():
    scene = forecast_eval.scenes()["walking"]["across 1.4 m/s"]
    track, truth = forecast_eval.track_scene(scene, 2.0, seed=0)
    np.testing.assert_allclose(truth(np.array([0.0, 1.0]))[:, :2], [[5.0, 2.5], [5.0, 1.1]], atol=1e-9)
    assert len(track) == 20
    # the smoothed world-frame track follows the walker (noise 2 cm lateral / 8 cm depth)
    assert np.linalg.norm(track[-1][1][:2] - truth(track[-1][0])[:2]) < 0.3
    assert abs(track[-1][2][1] + 1.4) < 0.3
