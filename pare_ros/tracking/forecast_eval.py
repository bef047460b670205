"""Forecast accuracy on the ground-truth harness: ADE/FDE at 0.5/1.0/1.5 s.

For every scene (walking, turning, stopping, standing; camera static or on a driving robot) the
harness (:mod:`pare_ros.scenes.motion`) gives each 10 Hz image the truth; a PARE-like estimate
of the root in the camera frame gets the harness's per-frame noise (:class:`EstimateNoise`:
2 cm lateral, 8 cm depth), is mapped into the world with the camera pose at the image stamp
(what the node does with TF), and goes through the node's smoother (:class:`BodySmoother`),
whose smoothed root and velocity feed each forecast model. From every frame after a warm-up
and for each horizon h, with the truth available at t + h:

- FDE(h) = ‖p̂(t+h) − p(t+h)‖ on the ground plane (x, y: what costmaps use);
- ADE(h) = mean of that error over the forecast steps in (0, h].

Averaged over origins and seeds. Run ``python -m pare_ros.tracking.forecast_eval`` for the
tables in docs/planners.md.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import replace
from typing import Callable, Dict, List, Sequence

import numpy as np

from ..scenes.motion import ROOT_HEIGHT, DetectorModel, EstimateNoise, MotionScene, Path, Walker, noisy_estimate
from ..scenes.motion_scenes import CAMERA, POSE
from ..scenes.types import CameraPose
from .forecast import ForecastParams, forecast_root, zero_velocity
from .smoothing import BodySmoother

HORIZONS = (0.5, 1.0, 1.5)
RATE = 10.0
WARMUP = 0.5     # s of tracking before forecasts are scored (the smoother's velocity settles)
UP = (0.0, 0.0, 1.0)


def _robot(t: float) -> CameraPose:
    """A camera on a robot driving forward at 0.5 m/s while turning at 0.15 rad/s."""
    yaw = 0.15 * t
    r = 0.5 / 0.15
    pos = [r * math.sin(yaw), r * (1 - math.cos(yaw)), 1.4]
    return CameraPose.looking(pos, yaw=yaw, pitch=math.radians(5))


def scenes() -> Dict[str, Dict[str, MotionScene]]:
    """kind → name → single-person scene (kinds: walking, turning, stopping, standing)."""
    def one(path: Path, pose=POSE) -> MotionScene:
        return MotionScene([Walker(1, path)], CAMERA, pose)

    return {
        "walking": {
            "across 1.4 m/s": one(Path([5.0, 2.5], yaw=-math.pi / 2).walk(5.0 / 1.4, 1.4)),
            "towards 1.0 m/s": one(Path([8.0, 0.3], yaw=math.pi).walk(4.5, 1.0)),
            "diagonal 1.2 m/s": one(Path([3.5, 1.8]).walk_to([7.5, -1.8], 1.2)),
            "across, robot driving": one(Path([6.0, 3.0], yaw=-math.pi / 2).walk(4.0, 1.3), _robot),
            "slow 0.5 m/s": one(Path([4.0, 1.2], yaw=-math.pi / 2).walk(5.0, 0.5)),
        },
        "turning": {
            "90° corner": one(Path([4.0, 2.2], yaw=-math.pi / 2).walk(1.6, 1.2).walk_to([7.0, 0.3], 1.2)),
            "zig-zag": one(Path([4.0, 2.0]).walk_to([5.0, 0.7], 1.2).walk_to([4.0, -0.6], 1.2)
                           .walk_to([5.0, -1.9], 1.2)),
            "U-turn": one(Path([5.0, 2.0], yaw=-math.pi / 2).walk(2.0, 1.1).turn(math.pi, 0.6).walk(2.0, 1.1)),
        },
        "stopping": {
            "walk 2 s, stop": one(Path([5.0, 2.2], yaw=-math.pi / 2).walk(2.0, 1.3).stop(2.5)),
            "approach and stop": one(Path([8.0, 0.0], yaw=math.pi).walk(2.5, 1.2).stop(2.5)),
            "walk 1 s, stand 3 s": one(Path([5.0, 1.0], yaw=-math.pi / 2).walk(1.0, 1.2).stop(3.0)),
            "stop-and-go": one(Path([5.0, 2.2], yaw=-math.pi / 2).walk(1.5, 1.3).stop(1.5).walk(1.5, 1.3)),
        },
        "standing": {
            "standing 4 m": one(Path([4.0, 0.0], yaw=math.pi).stop(5.0)),
            "standing, robot driving": one(Path([7.0, 1.5], yaw=math.pi).stop(5.0), _robot),
        },
    }


def track_scene(scene: MotionScene, duration: float, seed: int):
    """Smoothed world-frame root track of person 1: list of (stamp, position (3,), velocity (3,),
    velocity_valid, velocity_cov (3,3) or None) and the truth function t → (3,) root."""
    frames = scene.frames(RATE, duration, DetectorModel(box_noise=0.0))
    rng = np.random.default_rng(seed)
    noise = EstimateNoise()
    smoother = BodySmoother()
    track = []
    for f in frames:
        if 1 not in f.gt_ids:
            continue
        state_cam = f.people_camera[f.gt_ids.index(1)]
        rotmats, transl_cam, betas = noisy_estimate(state_cam, noise, rng)
        pose = f.camera_pose
        transl = pose.camera_to_world(transl_cam)
        rotmats = rotmats.copy()
        rotmats[0] = pose.rotation @ rotmats[0]
        if hasattr(smoother, "update"):       # the batched smoother (rays: camera → person, world axes)
            out = smoother.update([1], f.stamp, rotmats[None], transl[None], betas[None],
                                  camera_to_person=(transl - pose.translation)[None])
            track.append((f.stamp, out.transl[0], out.velocity[0], bool(out.velocity_valid[0]),
                          out.velocity_cov[0]))
        else:
            sm = smoother.smooth(1, f.stamp, rotmats, np.zeros((24, 3)) + transl, transl, betas)
            track.append((f.stamp, sm.transl, sm.root_velocity, sm.velocity_valid, None))
    walker = scene.walkers[0]
    keys = np.array(walker.path.keys)            # (t, x, y, yaw) keyframes, linear in between
    height = ROOT_HEIGHT * walker.height / 1.75

    def truth(t):
        t = np.asarray(t, dtype=np.float64)
        return np.stack([np.interp(t, keys[:, 0], keys[:, 1]), np.interp(t, keys[:, 0], keys[:, 2]),
                         np.full(t.shape, height)], -1)

    return track, truth


def evaluate(models: Dict[str, ForecastParams], seeds: Sequence[int] = (0, 1, 2),
             horizons: Sequence[float] = HORIZONS, per_scene: bool = False):
    """kind → model → horizon → (ADE, FDE) in m, averaged over the kind's scenes, seeds and
    origins (``per_scene``: keys are "kind: scene name" instead)."""
    results: Dict[str, Dict[str, Dict[float, tuple]]] = {}
    acc: Dict[str, Dict[str, Dict[float, List[tuple]]]] = {}
    for kind, named in scenes().items():
        for scene_name, scene in named.items():
            key = f"{kind}: {scene_name}" if per_scene else kind
            table = acc.setdefault(key, {m: {h: [] for h in horizons} for m in models})
            walker = scene.walkers[0]
            end = walker.path.end[0]
            for seed in seeds:
                track, truth = track_scene(scene, end, seed)
                for stamp, pos, vel, valid, cov in track:
                    if stamp - track[0][0] < WARMUP - 1e-9:
                        continue
                    for name, params in models.items():
                        fc = forecast_root(stamp, pos, vel, params, valid, cov)
                        for h in horizons:
                            if stamp + h > end + 1e-9:
                                continue
                            k = int(round(h / params.step))
                            future = truth(stamp + fc.times[1:k + 1])
                            err = np.linalg.norm((fc.positions[1:k + 1] - future)[:, :2], axis=1)
                            table[name][h].append((float(err.mean()), float(err[-1])))
    for key, table in acc.items():
        results[key] = {m: {h: tuple(np.mean(v, axis=0)) if v else (np.nan, np.nan) for h, v in hs.items()}
                        for m, hs in table.items()}
    return results


def default_models(base: ForecastParams = ForecastParams(up=UP)) -> Dict[str, ForecastParams]:
    return {
        "zero velocity": zero_velocity(base),
        "constant velocity": replace(base, still_speed=0.0, still_sigmas=0.0),
        "CV + 0.4 m/s dead band": replace(base, still_sigmas=0.0),
        "CV + dead band + 1.5σ test (node default)": base,
        "node default, damped 0.3/s": replace(base, damping=0.3),
    }


def markdown(results, horizons: Sequence[float] = HORIZONS) -> str:
    lines = []
    for kind, models in results.items():
        lines.append(f"\n**{kind}** (ADE / FDE, m)\n")
        lines.append("| model | " + " | ".join(f"{h:.1f} s" for h in horizons) + " |")
        lines.append("|---|" + "---|" * len(horizons))
        for model, hs in models.items():
            lines.append(f"| {model} | " + " | ".join(f"{hs[h][0]:.3f} / {hs[h][1]:.3f}" for h in horizons) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-scene", action="store_true", help="one table per scene")
    args = parser.parse_args(argv)
    print(markdown(evaluate(default_models(), seeds=range(args.seeds), per_scene=args.per_scene)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
