"""The standard motion scenes of the tracking tests and ``scripts/tracking_sweep.py``.

All use one camera: 640×480, f = 525 px (a VGA RGB-D camera), 1.4 m above the floor at the
world origin looking along +x, tilted down 5°. World y is to the camera's left, so a person
walking towards −y moves right in the image.
"""
from __future__ import annotations

import math

import numpy as np

from ..camera import Intrinsics
from .motion import DetectorModel, MotionScene, Path, Walker
from .types import CameraPose, SceneCamera

CAMERA = SceneCamera(Intrinsics(525.0, 525.0, 319.5, 239.5), 640, 480)
POSE = CameraPose.looking([0.0, 0.0, 1.4], yaw=0.0, pitch=math.radians(5))
NOISY = DetectorModel(box_noise=0.03, miss_rate=0.05, false_positives=0.1)


def _betas(k: int) -> np.ndarray:
    return np.random.default_rng(100 + k).normal(0, 1, 10)


def walker_scene(speed: float = 1.4, depth: float = 4.0, camera_speed: float = 0.0) -> MotionScene:
    """One person crossing the view from left to right at ``depth`` m, ``speed`` m/s, visible
    from t = 0 (so a tracker's confirmation time counts from the first image). Optional
    camera moving forward at ``camera_speed`` m/s."""
    path = Path([depth, 1.8], yaw=-math.pi / 2).walk(3.6 / speed, speed)
    pose = POSE if camera_speed == 0 else (
        lambda t: CameraPose(POSE.rotation, POSE.translation + [camera_speed * t, 0, 0]))
    return MotionScene([Walker(1, path, _betas(1))], CAMERA, pose)


def occlusion_scene(hidden_s: float, target_depth: float = 5.0, passer_depth: float = 2.5,
                    speed: float = 1.4) -> MotionScene:
    """A person standing at ``target_depth`` m while a passer-by at ``passer_depth`` m walks
    across, stops right in front of them and walks on, so that the target is hidden (less
    than the detector's ``min_visible``) for ``hidden_s`` s (the stop is calibrated on a 100 Hz
    sampling of the same scene)."""
    def build(stop: float) -> MotionScene:
        target = Walker(1, Path([target_depth, 0.0], yaw=math.pi).stop(30.0), _betas(1))
        passer = Walker(2, Path([passer_depth, 1.6], yaw=-math.pi / 2, t0=0.0)
                        .walk(1.6 / speed, speed).stop(stop).walk(1.6 / speed, speed), _betas(2))
        return MotionScene([target, passer], CAMERA, POSE)

    return build(max(hidden_s - _base_hidden_time(target_depth, passer_depth, speed, build), 0.0))


_BASE = {}


def _base_hidden_time(target_depth, passer_depth, speed, build) -> float:
    key = (target_depth, passer_depth, speed)
    if key not in _BASE:
        _BASE[key] = hidden_time(build(0.0))
    return _BASE[key]


def hidden_time(scene: MotionScene, person_id: int = 1, min_visible: float = 0.35,
                rate: float = 100.0, duration: float = 4.0) -> float:
    """s during which ``person_id`` is less than ``min_visible`` visible (sampled at ``rate``)."""
    frames = scene.frames(rate, duration, DetectorModel(box_noise=0.0))
    hidden = [f for f in frames if person_id in f.gt_ids and f.visible[f.gt_ids.index(person_id)] < min_visible]
    return len(hidden) / rate


def crossing_scenes() -> dict:
    """name → scene: people crossing in front of each other (one hides the other for a while)."""
    lateral = [Walker(1, Path([3.0, 1.5], yaw=-math.pi / 2).walk(3.0 / 1.4, 1.4), _betas(1)),
               Walker(2, Path([5.0, -2.3], yaw=math.pi / 2).walk(4.6 / 1.4, 1.4), _betas(2))]
    diagonal = [Walker(1, Path([3.0, 1.4]).walk_to([6.0, -1.4], 1.4), _betas(1)),
                Walker(2, Path([6.5, 1.6], t0=0.8).walk_to([3.0, -1.2], 1.5), _betas(2))]
    slow_fast = [Walker(1, Path([3.5, -1.6], yaw=math.pi / 2).walk(3.2 / 0.7, 0.7), _betas(1)),
                 Walker(2, Path([5.5, 2.5], yaw=-math.pi / 2).walk(5.0 / 2.0, 2.0), _betas(2))]
    three = [Walker(1, Path([3.0, 1.6], yaw=-math.pi / 2).walk(3.2 / 1.2, 1.2), _betas(1)),
             Walker(2, Path([4.5, -2.0], yaw=math.pi / 2).walk(4.0 / 1.4, 1.4), _betas(2)),
             Walker(3, Path([6.0, 2.6], yaw=-math.pi / 2).walk(5.2 / 1.6, 1.6), _betas(3))]
    moving = MotionScene(lateral, CAMERA, lambda t: CameraPose(POSE.rotation, POSE.translation + [0.3 * t, 0, 0]))
    return {"lateral": MotionScene(lateral, CAMERA, POSE), "diagonal": MotionScene(diagonal, CAMERA, POSE),
            "slow/fast": MotionScene(slow_fast, CAMERA, POSE), "three": MotionScene(three, CAMERA, POSE),
            "moving camera": moving}


def standing_scene(depth: float = 4.0) -> MotionScene:
    """One person standing still, facing the camera."""
    return MotionScene([Walker(1, Path([depth, 0.0], yaw=math.pi).stop(60.0), _betas(1))], CAMERA, POSE)


def turn_scene(angle: float = math.pi / 2, duration: float = 0.5, start: float = 1.5) -> MotionScene:
    """One person standing at 4 m, facing the camera, turning by ``angle`` in ``duration`` s
    starting at ``start`` s."""
    path = Path([4.0, 0.0], yaw=math.pi).stop(start).turn(angle, duration).stop(30.0)
    return MotionScene([Walker(1, path, _betas(1))], CAMERA, POSE)


def walk_behind_scene(speed: float = 1.4) -> MotionScene:
    """Person 1 walks across at 6 m behind person 2 standing at 2.5 m: hidden 0.79 s at 1.4 m/s,
    1.58 s at 0.7 m/s (:func:`hidden_time`). The walk lasts 4.4 m / ``speed``."""
    walker = Walker(1, Path([6.0, 2.2], yaw=-math.pi / 2).walk(4.4 / speed, speed), _betas(1))
    return MotionScene([walker, Walker(2, Path([2.5, 0.0], yaw=math.pi).stop(30.0), _betas(2))], CAMERA, POSE)
