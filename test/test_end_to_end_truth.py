"""End-to-end known-answer test of what the node PUBLISHES (issue 10 acceptance, integrated).

The real :class:`~pare_ros.ros.frame_processor.FrameProcessor` — the node's pipeline: (upstream)
detections → tracker → crop → network → perspective placement → batched smoother → SMPL →
``SmplBodyArray`` — with the node's default tracker and smoothing parameters, and
:class:`~pare_ros.scenes.perfect_pare.PerfectPare` as its network, on scenes whose truth is built
with ``pare_ros.scenes``: people standing off the optical axis, a walker, a person hidden for
1.5 s, one-frame flips and depth outliers of the network. Every assertion is on the published
messages (``joints_3d[0]`` = the pelvis, ``global_orient``, ``body_id``, ``tracking_state``,
``joint_confidence``) against the scene's truth, and every check is shown to fail on the same
scene with the defect it guards against put back (pass-through placement, no smoother, a
tracker that forgets or keeps publishing). Figures: ``pytest -s`` (docs/geometry.md,
"End-to-end check").

The images are blank rgb8 frames of the camera's size (the stand-in never looks at pixels);
the boxes are the projected SMPL meshes of the truth (clipped to the image), passed to
``process(detections=...)`` as the node does for its ``topic`` detector.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_ros.camera import CameraPlacement, Intrinsics, crop_cam_to_translation
from pare_ros.detection.base import Detections
from pare_ros.estimator import BodyEstimator
from pare_ros.scenes.bodies import bodies_in_camera, person_off_axis, relaxed_pose
from pare_ros.scenes.motion import MotionScene, Path, Walker
from pare_ros.scenes.perfect_pare import PerfectPare
from pare_ros.scenes.track_metrics import geodesic_deg
from pare_ros.scenes.types import CameraPose, SceneCamera

pytest.importorskip("sensor_msgs.msg")

# Not a camera of the other tests: off-centre principal point, fx ≠ fy, 960×720.
CAMERA = SceneCamera(Intrinsics(620.0, 580.0, 450.0, 340.0), 960, 720)
# 1.4 m above the floor looking along world +x, tilted down 5° (world y: the camera's left).
POSE = CameraPose.looking([0.0, 0.0, 1.4], yaw=0.0, pitch=math.radians(5))
SCORE = 0.9
T0 = 100.0                   # s, stamp of the first image


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """SMPL's small einsums on a loaded 2-core machine: one thread is 4× faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _print(*args):
    print("[e2e]", *args)


# ------------------------------------------------------------------------------ the stand-ins
class TruthEstimator(BodyEstimator):
    """The node's BodyEstimator whose network is a perfect PARE of the current frame's scene.

    ``show(bodies)`` before each frame: the truth SceneBody behind each detection box. For the
    boxes the FrameProcessor passes (those of tracked detections) the network answers what
    PerfectPare answers for the crop of that box; crop, placement and everything after it are
    the estimator's own code. ``glitch`` ("flip" / "depth") corrupts the network output of the
    next frame only: the crop-frame root turned 180° about the body's vertical axis, or the
    crop camera's scale lowered so that the body lands 1.5 m further along its ray.
    """

    def __init__(self, body_model, camera: SceneCamera) -> None:
        super().__init__(backend=None, body_model=body_model)
        self.camera = camera
        self._boxes = np.zeros((0, 4))
        self._bodies = []
        self._glitch = None

    def show(self, bodies, boxes, glitch=None) -> None:
        self._bodies, self._boxes, self._glitch = list(bodies), np.asarray(boxes, np.float64).reshape(-1, 4), glitch

    def estimate(self, image, boxes, intrinsics=None, color_order="rgb", scores=None, vertices=True,
                 part_maps=True):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        bodies = []
        for box in boxes:
            k = int(np.argmin(np.abs(self._boxes - box).max(1)))
            assert np.abs(self._boxes[k] - box).max() < 1e-2, "a box that is no person's"
            bodies.append(dataclasses.replace(self._bodies[k], box=box))    # the crop PARE is given
        self.backend = PerfectPare(bodies, self.camera, box_scale=self.box_scale,
                                   vertex_parts=self.body_model.vertex_parts)
        out = self.backend.outputs
        if self._glitch and bodies:
            if self._glitch == "flip":
                out["pred_pose"][0, 0] = out["pred_pose"][0, 0] @ torch.diag(torch.tensor([-1.0, 1.0, -1.0]))
            elif self._glitch == "depth":
                d = float(np.linalg.norm(bodies[0].root))
                out["pred_cam"][0, 0] *= d / (d + 1.5)
            self._glitch = None
        return super().estimate(image, boxes, intrinsics, color_order, scores, vertices, part_maps)


def pass_through(root_rotmats, cam, centres, sides, intrinsics, rest_root, keypoints_crop=None, **_):
    """The former placement (the defect of issue 10): crop orientation used as the camera
    orientation, translation from ``crop_cam_to_translation``."""
    eye = torch.eye(3, dtype=root_rotmats.dtype).expand_as(root_rotmats)
    return CameraPlacement(eye, root_rotmats, crop_cam_to_translation(cam, centres, sides, intrinsics), rest_root)


def node_tracker(**override):
    """The tracker with the node's parameter defaults (pipeline_factory.tracker_params)."""
    from pare_ros.ros.parameters import BY_NAME
    from pare_ros.tracking import Tracker

    names = ("iou_threshold", "min_hits", "max_age", "high_score", "gate", "max_coast", "confidence_tau")
    params = {n: BY_NAME[f"tracker.{n}"].default for n in names}
    params.update(override)
    return Tracker(id_prefix=BY_NAME["tracker.id_prefix"].default, **params)


def node_smoother():
    """BodySmoother with the node's smoothing.* defaults (pipeline_factory.smoothing_params)."""
    from pare_ros.ros.parameters import BY_NAME
    from pare_ros.tracking import BodySmoother, SmoothingParams

    assert BY_NAME["smoothing.enable"].default is True
    return BodySmoother(SmoothingParams(rot_gate_deg=BY_NAME["smoothing.rot_gate_deg"].default,
                                        gate=BY_NAME["smoothing.transl_gate"].default,
                                        betas_half_life=BY_NAME["smoothing.betas_half_life"].default))


def processor(body_model, camera=CAMERA, smoother=True, **tracker_override):
    from pare_ros.ros.frame_processor import FrameProcessor, ProcessorSettings
    from pare_ros.ros.pipeline_factory import UpstreamDetections

    estimator = TruthEstimator(body_model, camera)
    fp = FrameProcessor(estimator, UpstreamDetections(), node_tracker(**tracker_override),
                        ProcessorSettings(publish_markers=False), smoother=node_smoother() if smoother else None)
    return fp, estimator


def messages(camera: SceneCamera, stamp: float):
    from sensor_msgs.msg import CameraInfo, Image

    from pare_ros.ros.planner_outputs import stamp_msg

    w, h, k = camera.width, camera.height, camera.intrinsics
    msg = Image(height=h, width=w, encoding="rgb8", step=3 * w, data=bytes(3 * w * h))
    msg.header.stamp, msg.header.frame_id = stamp_msg(stamp), "camera_optical"
    info = CameraInfo(width=w, height=h, k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
                      p=[k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0])
    info.header = msg.header
    return msg, info


@dataclasses.dataclass
class Frame:
    stamp: float
    truth: list                 # SceneBody of every person in the image
    detected: list              # indices into truth the detector reports


def run(fp, estimator, frames, camera=CAMERA, glitch=None):
    """Publishes the frames; → per frame the list of SmplBody messages. ``glitch``: (frame
    index, kind)."""
    out = []
    for k, f in enumerate(frames):
        size = np.array([camera.width, camera.height] * 2, float)
        boxes = np.array([np.clip(f.truth[i].box, 0, size) for i in f.detected]).reshape(-1, 4)
        estimator.show([f.truth[i] for i in f.detected], boxes,
                       glitch[1] if glitch is not None and glitch[0] == k else None)
        msg, info = messages(camera, f.stamp)
        result = fp.process(msg, info, now=f.stamp, detections=Detections(boxes, np.full(len(boxes), SCORE)),
                            want_markers=False)
        out.append(list(result.bodies.bodies))
    return out


def root_of(body) -> np.ndarray:
    return np.asarray(body.joints_3d, np.float64).reshape(24, 3)[0]


def orient_of(body) -> np.ndarray:
    return Rotation.from_rotvec(np.asarray(body.global_orient, np.float64)).as_matrix()


def errors(body, truth):
    """(orientation °, root m) of a published body against its truth: ``global_orient``; the
    worst of the pelvis ``joints_3d[0]``, the smplx ``transl`` and the REP-155 ``root`` pose's
    origin (mid-hips)."""
    p = body.root.position
    hips = np.asarray(body.joints_3d, np.float64).reshape(24, 3)[1:3].mean(0)
    root = max(np.linalg.norm(root_of(body) - truth.root),
               np.linalg.norm(np.asarray(body.transl, np.float64) - truth.transl),
               np.linalg.norm(np.array([p.x, p.y, p.z]) - truth.joints[1:3].mean(0)),
               np.linalg.norm(hips - truth.joints[1:3].mean(0)))
    return float(geodesic_deg(orient_of(body), truth.orientation)), float(root)


def confirmed(body) -> bool:
    from pare_ros.msg import SmplBody

    return body.tracking_state == SmplBody.TRACK_CONFIRMED


# ------------------------------------------------------------------------------ scenes
def off_axis_frames(body_model, angle, distance, direction, rate=10.0, n=8, seed=0):
    rng = np.random.default_rng(seed)
    person = person_off_axis(angle, distance, direction, yaw_deg=rng.uniform(-40, 40),
                             body_pose=relaxed_pose() + rng.normal(0, 0.1, (23, 3)), betas=rng.normal(0, 1, 10))
    truth = bodies_in_camera(body_model, [person], CAMERA)
    box = truth[0].box
    assert box[0] >= 0 and box[1] >= 0 and box[2] <= CAMERA.width and box[3] <= CAMERA.height, (angle, distance, direction, box)
    return [Frame(T0 + k / rate, truth, [0]) for k in range(n)]


def walk_scene(speed=1.4, depth=4.0):
    """A person crossing the view from the camera's left to its right at ``depth`` m."""
    path = Path([depth, 1.8], yaw=-math.pi / 2, t0=T0).walk(3.6 / speed, speed)
    return MotionScene([Walker(1, path, np.random.default_rng(11).normal(0, 1, 10))], CAMERA, POSE)


def stand_scene(depth=4.0):
    path = Path([depth, 0.6], yaw=math.pi - 0.3, t0=T0).stop(60.0)
    return MotionScene([Walker(1, path, np.random.default_rng(12).normal(0, 1, 10))], CAMERA, POSE)


def scene_frames(body_model, scene, rate, duration, hidden=(math.inf, math.inf), t0=T0):
    """Frames of ``scene`` (relaxed arms); no detection while ``hidden[0] ≤ t − t0 < hidden[1]``."""
    frames = []
    for f in scene.frames(rate, duration, t0=t0):
        people = [dataclasses.replace(p, body_pose=relaxed_pose()) for p in f.people]
        truth = bodies_in_camera(body_model, people, scene.camera, f.camera_pose)
        seen = not (hidden[0] <= f.stamp - t0 < hidden[1])
        frames.append(Frame(f.stamp, truth, list(range(len(truth))) if seen else []))
    return frames


# ------------------------------------------------------------------------------ 1. off axis
OFF_AXIS = [(15, 2.0, 180), (15, 5.0, 60), (25, 3.0, 160), (25, 5.0, 225), (30, 3.0, 0), (30, 5.0, 330)]
SETTLE_FRAMES = 4            # confirmed at frame 3 (min_hits), then one more


def off_axis_violations(published, frames, orient_deg=5.0, root_m=0.05):
    bad, worst = [], (0.0, 0.0)
    for bodies, f in list(zip(published, frames))[SETTLE_FRAMES:]:
        if len(bodies) != 1 or not confirmed(bodies[0]):
            bad.append(f"t={f.stamp:.2f}: {len(bodies)} bodies published")
            continue
        o, r = errors(bodies[0], f.truth[0])
        worst = (max(worst[0], o), max(worst[1], r))
        if o > orient_deg or r > root_m:
            bad.append(f"t={f.stamp:.2f}: orientation {o:.2f}°, root {100 * r:.1f} cm")
    return bad, worst


def test_off_axis_people_published_within_5deg_5cm(body_model):
    for k, (angle, distance, direction) in enumerate(OFF_AXIS):
        frames = off_axis_frames(body_model, angle, distance, direction, seed=k)
        fp, est = processor(body_model)
        bad, worst = off_axis_violations(run(fp, est, frames), frames)
        _print(f"off-axis {angle}° at {distance} m (image direction {direction}°): published orientation "
               f"{worst[0]:.2f}° (≤ 5), root {100 * worst[1]:.2f} cm (≤ 5)")
        assert not bad, (angle, distance, direction, bad)


def test_off_axis_check_fails_with_pass_through_placement(body_model, monkeypatch):
    import pare_ros.estimator as estimator_module

    monkeypatch.setattr(estimator_module, "crop_to_camera", pass_through)
    frames = off_axis_frames(body_model, 30, 3.0, 0, seed=4)
    fp, est = processor(body_model)
    bad, worst = off_axis_violations(run(fp, est, frames), frames)
    _print(f"  sanity, pass-through placement at 30°/3 m: orientation {worst[0]:.1f}°, root {100 * worst[1]:.1f} cm")
    assert bad and worst[0] > 10


# ------------------------------------------------------------------------------ 2. walker
RATES = (3.0, 5.0, 10.0, 30.0)
# Bound while walking, from the first CONFIRMED message on: the 5 cm. With a perfect
# network the only errors are placement (≤ 0.2 cm, docs/geometry.md) and the smoother's: its
# constant-velocity Kalman filter has no steady-state lag on a constant-velocity walk, so
# 5 cm is what a lag of 36 ms at 1.4 m/s would use up (one frame of lag at 10 Hz is 14 cm).
WALK_ROOT_M = 0.05
WALK_ORIENT_DEG = 5.0
WALK_VELOCITY = 0.10         # m/s, published root_velocity from 1 s on


def walk_report(published, frames, speed=1.4):
    """(confirmation s, body_ids, per-frame (stamp, root error m, lag s, orientation °) of the
    frames from the first CONFIRMED message on)."""
    t0 = frames[0].stamp
    first = next((f.stamp - t0 for b, f in zip(published, frames) if b and confirmed(b[0])), None)
    ids = {b.body_id for bodies in published for b in bodies}
    rows = []
    v = POSE.rotation.T @ np.array([0.0, -1.0, 0.0])      # the walking direction, camera frame
    for bodies, f in zip(published, frames):
        if first is None or f.stamp - t0 < first - 1e-9:
            continue
        if not bodies:
            rows.append((f.stamp - t0, math.inf, math.nan, math.inf, math.inf))
            continue
        o, r = errors(bodies[0], f.truth[0])
        err = root_of(bodies[0]) - f.truth[0].root
        vel = bodies[0].root_velocity
        dv = (float(np.linalg.norm(np.array([vel.x, vel.y, vel.z]) - speed * v))
              if bodies[0].velocity_valid and bodies[0].velocity_frame == "camera_optical" else math.inf)
        rows.append((f.stamp - t0, r, float(-err @ v / speed), o, dv))
    return first, ids, rows


def walk_violations(published, frames, root_m=WALK_ROOT_M, orient_deg=WALK_ORIENT_DEG):
    first, ids, rows = walk_report(published, frames)
    bad = []
    if first is None or first > 1.0:
        bad.append(f"confirmed after {first} s")
    if len(ids) != 1:
        bad.append(f"body_ids {sorted(ids)}")
    bad += [f"t={t:.2f}: root {100 * e:.1f} cm, orientation {o:.1f}°" for t, e, _, o, _ in rows
            if not (e <= root_m and o <= orient_deg)]
    bad += [f"t={t:.2f}: root_velocity off by {dv:.2f} m/s" for t, *_, dv in rows
            if t >= 1.0 and not dv <= WALK_VELOCITY]
    return bad


@pytest.mark.parametrize("rate", RATES)
def test_walker_confirmed_within_1s_one_id_root_tracked(body_model, rate):
    frames = scene_frames(body_model, walk_scene(), rate, 3.6 / 1.4)
    fp, est = processor(body_model)
    published = run(fp, est, frames)
    first, ids, rows = walk_report(published, frames)
    err, lag, orient, dv = (np.array([row[i] for row in rows]) for i in (1, 2, 3, 4))
    late = err[[t >= 1.0 for t, *_ in rows]]
    dv = dv[[t >= 1.0 for t, *_ in rows]]
    _print(f"walker 1.4 m/s at {rate:g} Hz: confirmed after {first:.2f} s (≤ 1), body_ids {sorted(ids)}; "
           f"from confirmation: root max {100 * err.max():.2f} cm (≤ {100 * WALK_ROOT_M:.0f}), after 1 s "
           f"max {100 * late.max():.2f} cm; lag mean {1000 * lag.mean():+.1f} ms (max |{1000 * np.abs(lag).max():.1f}|); "
           f"orientation max {orient.max():.2f}° (≤ {WALK_ORIENT_DEG:g}); root_velocity from 1 s: "
           f"max error {dv.max():.3f} m/s (≤ {WALK_VELOCITY:g})")
    bad = walk_violations(published, frames)
    assert not bad, (rate, bad)


def test_walker_check_fails_with_pass_through_placement_or_a_lagging_smoother(body_model, monkeypatch):
    import pare_ros.estimator as estimator_module
    from pare_ros.tracking import BodySmoother, SmoothingParams

    frames = scene_frames(body_model, walk_scene(), 10.0, 3.6 / 1.4)
    fp, est = processor(body_model)
    # ~ no velocity, and no gate (else its held estimates pair up and re-anchor it: no lag left)
    fp.smoother = BodySmoother(SmoothingParams(velocity_std=0.01, accel_std=0.01, gate=1e12))
    lagging = walk_violations(run(fp, est, frames), frames)
    monkeypatch.setattr(estimator_module, "crop_to_camera", pass_through)
    fp, est = processor(body_model)
    placed = walk_violations(run(fp, est, frames), frames)
    _print(f"  sanity, walker at 10 Hz: lagging smoother {len(lagging)} violations, e.g. {lagging[-1:]}; "
           f"pass-through placement {len(placed)}, e.g. {placed[-1:]}")
    assert any("root " in b for b in lagging) and any("root_velocity" in b for b in lagging)
    assert any("root " in b for b in placed)


# ------------------------------------------------------------------------------ 3. hidden 1.5 s
HIDE = (1.0, 2.5)            # s after the start: no detections


def hidden_violations(published, frames, max_coast=0.5):
    """The person keeps one body_id; while hidden it is published COASTING (last estimate,
    decaying confidence) for at most ``max_coast`` s after its last detection, then nothing."""
    from pare_ros.msg import SmplBody

    bad, t0 = [], frames[0].stamp
    ids = {b.body_id for bodies in published for b in bodies}
    if len(ids) != 1:
        bad.append(f"body_ids {sorted(ids)}")
    last_seen, last_body, conf = None, None, []
    coasted = lost = 0
    for bodies, f in zip(published, frames):
        t = f.stamp - t0
        if f.detected:
            if HIDE[1] <= t and bodies:
                if errors(bodies[0], f.truth[0])[1] > 0.05:
                    bad.append(f"t={t:.2f}: re-found root off by {errors(bodies[0], f.truth[0])[1]:.3f} m")
            if t < HIDE[0]:
                last_seen, last_body = t, bodies[0] if bodies else None
            continue
        since = t - last_seen
        if since <= max_coast + 1e-6:
            if len(bodies) != 1 or bodies[0].tracking_state != SmplBody.TRACK_COASTING:
                bad.append(f"t={t:.2f}: coasting {since:.2f} s but {len(bodies)} bodies published")
                continue
            coasted += 1
            c = float(np.max(bodies[0].joint_confidence))
            if conf and not c < conf[-1]:
                bad.append(f"t={t:.2f}: confidence {c:.3f} not decaying ({conf[-1]:.3f} before)")
            conf.append(c)
            if np.linalg.norm(root_of(bodies[0]) - root_of(last_body)) > 1e-4:
                bad.append(f"t={t:.2f}: coasting body is not the last estimate")
        else:
            lost += 1
            if bodies:
                bad.append(f"t={t:.2f}: hidden {since:.2f} s (> max_coast) but published "
                           f"({bodies[0].body_id}, state {bodies[0].tracking_state})")
    back = [k for k, f in enumerate(frames) if f.stamp - t0 >= HIDE[1]]
    if not any(bodies and confirmed(bodies[0]) for bodies in (published[k] for k in back[:3])):
        bad.append("not published again within 3 frames of re-appearing")
    return bad, coasted, lost, conf


@pytest.mark.parametrize("rate", (5.0, 15.0))
def test_hidden_person_keeps_its_id_coasts_then_lost(body_model, rate):
    frames = scene_frames(body_model, stand_scene(), rate, 3.5, hidden=HIDE)
    fp, est = processor(body_model)
    published = run(fp, est, frames)
    bad, coasted, lost, conf = hidden_violations(published, frames)
    ids = sorted({b.body_id for bodies in published for b in bodies})
    t0 = frames[0].stamp
    seen = next(f.stamp for f in frames if f.stamp - t0 >= HIDE[1])
    back = next(f.stamp for b, f in zip(published, frames) if f.stamp - t0 >= HIDE[1] and b)
    _print(f"hidden 1.5 s at {rate:g} Hz: body_ids {ids}; {coasted} frames COASTING (confidence "
           f"{' → '.join(f'{c:.2f}' for c in conf)}), {lost} hidden frames unpublished (LOST), "
           f"published again {back - seen:.2f} s after the first detection back (probation frame)")
    assert not bad, (rate, bad)


def test_hidden_check_fails_when_the_tracker_forgets_or_keeps_publishing(body_model):
    frames = scene_frames(body_model, stand_scene(), 5.0, 3.5, hidden=HIDE)
    fp, est = processor(body_model, max_age=1.0)           # forgets before the person is back
    forgets, *_ = hidden_violations(run(fp, est, frames), frames)
    fp, est = processor(body_model, max_coast=2.0)         # publishes the whole time hidden
    keeps, *_ = hidden_violations(run(fp, est, frames), frames)
    _print(f"  sanity, tracker max_age 1 s: {forgets[:1]}; max_coast 2 s: {keeps[:1]}")
    assert any("body_ids" in b for b in forgets)
    assert any("> max_coast" in b for b in keeps)


# ------------------------------------------------------------------------------ 4. outliers
GLITCH_AT = 7


def glitch_effect(body_model, frames, kind, smoother=True, clean=None):
    """(max orientation change °, max root change m) of the published bodies between a clean
    run (``clean``: its messages, if already run) and the same run with a one-frame ``kind``
    glitch at GLITCH_AT, and the worst error against the truth of the glitched run from
    GLITCH_AT on."""
    runs = [clean] if clean is not None else []
    for glitch in [None, (GLITCH_AT, kind)][len(runs):]:
        fp, est = processor(body_model, smoother=smoother)
        runs.append(run(fp, est, frames, glitch=glitch))
    moved_o = moved_r = truth_o = truth_r = 0.0
    for k, (a, b, f) in enumerate(zip(*runs, frames)):
        assert len(a) == len(b) == 1, k
        moved_o = max(moved_o, float(geodesic_deg(orient_of(a[0]), orient_of(b[0]))))
        moved_r = max(moved_r, float(np.linalg.norm(root_of(a[0]) - root_of(b[0]))))
        if k >= GLITCH_AT:
            o, r = errors(b[0], f.truth[0])
            truth_o, truth_r = max(truth_o, o), max(truth_r, r)
    return moved_o, moved_r, truth_o, truth_r


@pytest.fixture(scope="module")
def outlier_scenes(body_model):
    """name → (frames, the clean run's messages)."""
    scenes = {"standing 25°/3 m": off_axis_frames(body_model, 25, 3.0, 0, rate=10.0, n=11, seed=7),
              "walking 1.4 m/s": scene_frames(body_model, walk_scene(), 10.0, 1.2)}
    out = {}
    for name, frames in scenes.items():
        fp, est = processor(body_model)
        out[name] = (frames, run(fp, est, frames))
    return out


@pytest.mark.parametrize("kind", ("flip", "depth"))
def test_one_frame_network_outlier_does_not_reach_the_messages(body_model, outlier_scenes, kind):
    for name, (frames, clean) in outlier_scenes.items():
        moved_o, moved_r, truth_o, truth_r = glitch_effect(body_model, frames, kind, clean=clean)
        _print(f"one-frame {kind} ({name}, 10 Hz): published orientation moved {moved_o:.2f}° (< 10), "
               f"root {100 * moved_r:.2f} cm (< 10); vs truth from the glitch on {truth_o:.2f}° / {100 * truth_r:.1f} cm")
        assert moved_o < 10 and moved_r < 0.10, (name, kind, moved_o, moved_r)


def test_outlier_check_fails_without_the_smoother(body_model, outlier_scenes):
    frames = outlier_scenes["standing 25°/3 m"][0]
    flip = glitch_effect(body_model, frames, "flip", smoother=False)
    depth = glitch_effect(body_model, frames, "depth", smoother=False)
    _print(f"  sanity, no smoother: flip moves the published orientation {flip[0]:.1f}°, "
           f"depth moves the root {100 * depth[1]:.1f} cm")
    assert flip[0] > 170                           # the glitch reaches the message…
    assert depth[1] == pytest.approx(1.5, abs=0.15)   # …and it is a real 1.5 m depth outlier


# ------------------------------------------------------------------------------ 4b. outliers where
# the smoother's gate is wide: the first image back after LOST, the second image of a track.
# Both failed the issue's < 10 cm before the smoother paired such estimates (root moved 171 / 157 cm,
# 277 / 682 cm; docs/geometry.md, "End-to-end check").
@pytest.mark.parametrize("rate", (5.0, 15.0))
def test_depth_outlier_on_the_first_image_of_a_refound_track(body_model, rate):
    frames = scene_frames(body_model, stand_scene(), rate, 3.5, hidden=HIDE)
    back = next(k for k, f in enumerate(frames) if f.stamp - T0 >= HIDE[1])
    runs = []
    for glitch in (None, (back, "depth")):
        fp, est = processor(body_model)
        runs.append(run(fp, est, frames, glitch=glitch))
    moved = [float(np.linalg.norm(root_of(a[0]) - root_of(b[0]))) for a, b in zip(*runs) if a and b]
    assert all(len(a) == len(b) for a, b in zip(*runs))
    _print(f"one-frame depth outlier on the first image after 1.5 s hidden ({rate:g} Hz): published root "
           f"moved {100 * max(moved):.1f} cm (< 10)")
    assert max(moved) < 0.10


@pytest.mark.parametrize("scene", ("standing", "walking"))
def test_depth_outlier_on_the_second_image_of_a_track_at_3hz(body_model, scene):
    frames = (off_axis_frames(body_model, 25, 3.0, 0, rate=3.0, n=8, seed=7) if scene == "standing"
              else scene_frames(body_model, walk_scene(), 3.0, 3.6 / 1.4))
    runs = []
    for glitch in (None, (1, "depth")):
        fp, est = processor(body_model)
        runs.append(run(fp, est, frames, glitch=glitch))
    # CONFIRMED messages only: the second image's own (TENTATIVE) message has no history to judge by.
    moved = [float(np.linalg.norm(root_of(a[0]) - root_of(b[0]))) for a, b in zip(*runs)
             if a and b and confirmed(b[0])]
    bad = sum(m >= 0.10 for m in moved)
    _print(f"one-frame depth outlier on a new track's second image, {scene}, 3 Hz: {bad} CONFIRMED messages "
           f"moved ≥ 10 cm, worst {100 * max(moved):.0f} cm (< 10)")
    assert max(moved) < 0.10
