"""People moving in the world, seen by a camera at any frame rate, and what a detector reports.

A :class:`Path` is a person's ground-plane trajectory built from segments (``walk``, ``turn``,
``stop``, ``walk_to``); a :class:`Walker` is a person on a path (SMPL shape, body size); a
:class:`MotionScene` is walkers + a camera (intrinsics, image size) + a static or moving
:class:`~.types.CameraPose`. ``scene.frames(rate, duration, detector)`` samples it at ``rate`` Hz
and returns one :class:`MotionFrame` per image with the ground truth (world and camera
:class:`~.types.PersonState`, the projected box and the visible part of it) and the detector
output: boxes with noise, misses, false positives, occlusion (a person behind nearer people
loses the hidden part of the box, gets a lower score, and is missed when mostly hidden).

Body model for boxes: an upright elliptic cylinder (``width`` across the shoulders, ``depth``
chest to back, ``height`` feet to head) turned with the person's yaw. Its projected box is within
a few per cent of an SMPL mesh's for upright people, which is all a box tracker sees.
Occlusion is computed on a grid of samples inside each box against the boxes of nearer people
(rectangles), so a partly hidden person's detector box is the box of the visible samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from .types import CameraPose, PersonState, SceneCamera, yaw_orientation

ROOT_HEIGHT = 0.93      # m, SMPL neutral pelvis above the ground for a 1.75 m person


# ------------------------------------------------------------------------------- trajectories
class Path:
    """Piecewise-linear ground trajectory with yaw: keyframes (t, x, y, yaw), world frame.

    Position and yaw are interpolated linearly between keyframes (yaw unwrapped), held before
    the first and after the last. Builder methods append a segment and return ``self``.
    """

    def __init__(self, start_xy, yaw: float = 0.0, t0: float = 0.0) -> None:
        x, y = (float(v) for v in start_xy)
        self.keys = [(float(t0), x, y, float(yaw))]

    @property
    def end(self):
        return self.keys[-1]

    def walk(self, duration: float, speed: float) -> "Path":
        """Walk ``duration`` s at ``speed`` m/s along the current yaw."""
        t, x, y, yaw = self.end
        d = speed * duration
        self.keys.append((t + duration, x + d * math.cos(yaw), y + d * math.sin(yaw), yaw))
        return self

    def walk_to(self, xy, speed: float, face: bool = True) -> "Path":
        """Walk straight to ``xy`` at ``speed`` m/s; ``face``: turn to the heading instantly."""
        t, x, y, yaw = self.end
        dx, dy = float(xy[0]) - x, float(xy[1]) - y
        dist = math.hypot(dx, dy)
        if face and dist > 0:
            heading = math.atan2(dy, dx)
            yaw = yaw + (heading - yaw + math.pi) % (2 * math.pi) - math.pi
            self.keys[-1] = (t, x, y, yaw)
        self.keys.append((t + dist / speed, x + dx, y + dy, yaw))
        return self

    def turn(self, angle: float, duration: float) -> "Path":
        """Turn on the spot by ``angle`` rad (positive: to the left) in ``duration`` s."""
        t, x, y, yaw = self.end
        self.keys.append((t + duration, x, y, yaw + angle))
        return self

    def stop(self, duration: float) -> "Path":
        t, x, y, yaw = self.end
        self.keys.append((t + duration, x, y, yaw))
        return self

    def at(self, t: float):
        """(x, y, yaw, vx, vy) at time ``t`` s (velocity of the segment containing t)."""
        ts = np.array([k[0] for k in self.keys])
        vals = np.array([k[1:] for k in self.keys])
        if t <= ts[0] or len(ts) == 1:
            return (*vals[0], 0.0, 0.0)
        if t >= ts[-1]:
            return (*vals[-1], 0.0, 0.0)
        i = int(np.searchsorted(ts, t, side="right")) - 1
        dt = ts[i + 1] - ts[i]
        w = (t - ts[i]) / dt if dt > 0 else 1.0
        x, y, yaw = vals[i] + w * (vals[i + 1] - vals[i])
        vx, vy = (vals[i + 1, :2] - vals[i, :2]) / dt if dt > 0 else (0.0, 0.0)
        return x, y, yaw, vx, vy


@dataclass
class Walker:
    """A person on a path. ``present``: (t_start, t_end) s during which the person exists
    (entering/leaving a scene through a door); default always. Sizes in m."""

    person_id: int
    path: Path
    betas: np.ndarray = field(default_factory=lambda: np.zeros(10))
    height: float = 1.75
    width: float = 0.50
    depth: float = 0.30
    present: tuple = (-math.inf, math.inf)

    def state(self, t: float) -> Optional[PersonState]:
        if not self.present[0] <= t <= self.present[1]:
            return None
        x, y, yaw, vx, vy = self.path.at(t)
        root = np.array([x, y, ROOT_HEIGHT * self.height / 1.75])
        return PersonState(self.person_id, root, yaw_orientation(yaw), betas=np.asarray(self.betas, float),
                           velocity=np.array([vx, vy, 0.0]))

    def outline(self, state: PersonState, n: int = 12) -> np.ndarray:
        """[2n,3] world points: the feet and head rings of the body cylinder."""
        a = np.linspace(0, 2 * np.pi, n, endpoint=False)
        # body frame: x left, z forward (yaw_orientation); ring in the body's x-z plane
        ring = np.stack([0.5 * self.width * np.cos(a), np.zeros(n), 0.5 * self.depth * np.sin(a)], 1)
        ring_w = ring @ np.asarray(state.orientation).T
        base = np.array([state.root[0], state.root[1], 0.0])
        return np.concatenate([ring_w + base, ring_w + base + [0, 0, self.height]])


# ------------------------------------------------------------------------------- detector
@dataclass
class DetectorModel:
    """What a person detector reports, as a function of the true visible box.

    box_noise: 1σ of each box coordinate, fraction of the box height.
    miss_rate: probability of missing a fully visible person in a frame.
    min_visible: a person with less than this fraction of the box visible is not detected.
    score: score of a fully visible person; it falls linearly to ``occluded_score`` at
        ``min_visible`` (partly hidden people get the low scores ByteTrack's second stage uses).
    false_positives: mean number of false boxes per frame (Poisson), person-shaped, random.
    min_height: px; smaller boxes are not reported (as the node's min_box_height).
    """

    box_noise: float = 0.03
    miss_rate: float = 0.0
    min_visible: float = 0.35
    score: float = 0.85
    occluded_score: float = 0.3
    score_noise: float = 0.05
    false_positives: float = 0.0
    min_height: float = 24.0
    seed: int = 0


@dataclass
class MotionFrame:
    """One image of a scene.

    people / people_camera: ground-truth states (world / camera optical frame) of the people
        in front of the camera, in ``gt_ids`` order.
    gt_boxes [G,4]: projected body boxes clipped to the image (xyxy px); visible_boxes [G,4]:
        boxes of the parts not hidden by nearer people; visible [G]: visible fraction of the
        unclipped box (0 = fully hidden or outside).
    det_boxes [K,4], det_scores [K], det_ids [K]: detector output; det_ids = the person a box
        belongs to, −1 for false positives (for tests; a tracker never sees it).
    """

    stamp: float
    camera_pose: CameraPose
    gt_ids: List[int]
    people: List[PersonState]
    people_camera: List[PersonState]
    gt_boxes: np.ndarray
    visible_boxes: np.ndarray
    visible: np.ndarray
    det_boxes: np.ndarray
    det_scores: np.ndarray
    det_ids: np.ndarray


PoseSource = Union[CameraPose, Callable[[float], CameraPose]]


@dataclass
class MotionScene:
    """Walkers seen by ``camera`` from ``camera_pose`` (a pose or a function of t)."""

    walkers: Sequence[Walker]
    camera: SceneCamera
    camera_pose: PoseSource

    def pose_at(self, t: float) -> CameraPose:
        return self.camera_pose(t) if callable(self.camera_pose) else self.camera_pose

    def frames(self, rate: float, duration: float, detector: Optional[DetectorModel] = None,
               t0: float = 0.0, phase: float = 0.0) -> List[MotionFrame]:
        """Images at ``rate`` Hz from ``t0 + phase/rate`` for ``duration`` s."""
        if rate <= 0 or duration <= 0:
            raise ValueError(f"rate ({rate}) and duration ({duration}) must be positive")
        det = detector or DetectorModel()
        rng = np.random.default_rng(det.seed)
        n = int(math.floor(duration * rate + 1e-9))
        return [self.frame(t0 + (k + phase) / rate, det, rng) for k in range(n)]

    def frame(self, t: float, det: DetectorModel, rng: np.random.Generator) -> MotionFrame:
        pose = self.pose_at(t)
        cam = self.camera
        entries = []
        for w in self.walkers:
            st = w.state(t)
            if st is None:
                continue
            pts = pose.world_to_camera(w.outline(st))
            if (pts[:, 2] < 0.2).any():                  # (partly) behind the camera: unseen
                continue
            uv = cam.project(pts)
            box = np.r_[uv.min(0), uv.max(0)]
            entries.append((w, st, box, float(pose.world_to_camera(st.root)[2])))
        entries.sort(key=lambda e: e[3])                 # nearest first
        size = np.array([cam.width, cam.height, cam.width, cam.height], float)
        ids, people, people_cam, gt, vis_boxes, vis = [], [], [], [], [], []
        nearer: List[np.ndarray] = []
        for w, st, box, _ in entries:
            frac, vbox = _visible_part(box, nearer, cam.width, cam.height)
            nearer.append(box)
            clipped = np.clip(box, 0, size)
            if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
                continue
            ids.append(w.person_id)
            people.append(st)
            people_cam.append(st.in_camera(pose))
            gt.append(clipped)
            vis_boxes.append(vbox)
            vis.append(frac)
        order = np.argsort(ids, kind="stable")
        pick = lambda seq: [seq[i] for i in order]
        ids, people, people_cam = pick(ids), pick(people), pick(people_cam)
        gt = np.array(pick(gt)).reshape(-1, 4)
        vis_boxes = np.array(pick(vis_boxes)).reshape(-1, 4)
        vis = np.array(pick(vis), dtype=np.float64)
        boxes, scores, det_ids = _detect(det, rng, ids, vis_boxes, vis, cam.width, cam.height)
        return MotionFrame(t, pose, ids, people, people_cam, gt, vis_boxes, vis, boxes, scores, det_ids)


def _visible_part(box, nearer, width, height, n: int = 20):
    """(visible fraction of ``box``, xyxy box of its visible samples) given the nearer boxes
    and the image; samples on an n×n grid (rows v, columns u)."""
    u = box[0] + (box[2] - box[0]) * _GRID[n]
    v = box[1] + (box[3] - box[1]) * _GRID[n]
    seen = ((v >= 0) & (v < height))[:, None] & ((u >= 0) & (u < width))[None, :]
    for b in nearer:
        seen &= ~(((v >= b[1]) & (v <= b[3]))[:, None] & ((u >= b[0]) & (u <= b[2]))[None, :])
    if not seen.any():
        return 0.0, np.zeros(4)
    rows, cols = np.nonzero(seen.any(1))[0], np.nonzero(seen.any(0))[0]
    return float(seen.mean()), np.array([u[cols[0]], v[rows[0]], u[cols[-1]], v[rows[-1]]])


_GRID = {n: np.linspace(0.0, 1.0, n) for n in (20,)}


def _detect(det: DetectorModel, rng, ids, vis_boxes, vis, width, height):
    boxes, scores, owners = [], [], []
    size = np.array([width, height, width, height], float)
    for pid, box, frac in zip(ids, vis_boxes, vis):
        miss = rng.random() < det.miss_rate               # draw always: same noise per person
        noise = rng.normal(0, det.box_noise, 4)
        s_noise = rng.normal(0, det.score_noise)
        if miss or frac < det.min_visible:
            continue
        h = box[3] - box[1]
        noisy = np.clip(box + noise * h, 0, size)
        if noisy[3] - noisy[1] < det.min_height or noisy[2] - noisy[0] < 2:
            continue
        w = (frac - det.min_visible) / max(1 - det.min_visible, 1e-9)
        score = det.occluded_score + (det.score - det.occluded_score) * min(w, 1.0)
        boxes.append(noisy)
        scores.append(float(np.clip(score + s_noise, 0.01, 1.0)))
        owners.append(pid)
    for _ in range(rng.poisson(det.false_positives) if det.false_positives > 0 else 0):
        h = rng.uniform(0.15, 0.6) * height
        x, y = rng.uniform(0, width - 0.4 * h), rng.uniform(0, height - h)
        boxes.append(np.array([x, y, x + 0.4 * h, y + h]))
        scores.append(float(rng.uniform(0.5, 0.9)))
        owners.append(-1)
    return (np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64),
            np.array(owners, dtype=np.int64))


# ------------------------------------------------------------------------------- estimates
@dataclass
class EstimateNoise:
    """Per-frame errors of a PARE-like estimate of a person in the camera frame.

    transl_std: (3,) m, 1σ of the root position, camera axes (monocular depth is the worst).
    rot_std: rad, 1σ of each joint rotation's error (random axis).
    betas_std: 1σ per shape coefficient.
    """

    transl_std: tuple = (0.02, 0.02, 0.08)
    rot_std: float = math.radians(4.0)
    betas_std: float = 0.15
    seed: int = 0


def noisy_estimate(state_cam: PersonState, noise: EstimateNoise, rng: np.random.Generator):
    """(rotmats [24,3,3], transl [3], betas [10]) of one camera-frame state with noise.

    rotmats[0] is the body → camera rotation (PARE's global orientation); the others the body
    pose as rotation matrices. ``transl`` is the root position (the smoother is indifferent to
    the constant SMPL offset between model origin and pelvis).
    """
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_rotvec(np.concatenate([Rotation.from_matrix(state_cam.orientation).as_rotvec()[None],
                                               state_cam.body_pose]))
    err = Rotation.from_rotvec(rng.normal(0, noise.rot_std / math.sqrt(3), (24, 3)))
    rotmats = (rot * err).as_matrix()
    transl = state_cam.root + rng.normal(0, 1, 3) * np.asarray(noise.transl_std)
    betas = np.asarray(state_cam.betas, float) + rng.normal(0, noise.betas_std, 10)
    return rotmats, transl, betas


def flip_root(rotmats: np.ndarray) -> np.ndarray:
    """PARE's front/back error: the body turned by 180° about its own vertical (SMPL y) axis."""
    out = np.array(rotmats, dtype=np.float64, copy=True)
    out[0] = out[0] @ np.diag([-1.0, 1.0, -1.0])
    return out


def push_along_ray(transl: np.ndarray, metres: float) -> np.ndarray:
    """A depth outlier: the root moved ``metres`` further along its viewing ray (a wrong scale
    of PARE's weak-perspective camera moves the body along the ray, not along z)."""
    t = np.asarray(transl, dtype=np.float64)
    return t + metres * t / np.linalg.norm(t)
