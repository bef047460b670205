"""Multi-person box tracker: two-stage association (ByteTrack), Kalman motion, a lost state.

Per ``update(boxes, scores, stamp)``:

1. every track's box is predicted to ``stamp`` (constant velocity, :mod:`.kalman`);
2. detections split into *high* (score ≥ ``high_score``) and *low* (``low_score`` ≤ score <
   ``high_score``); lower ones are ignored;
3. published tracks (CONFIRMED, COASTING) ↔ high detections;
4. those still unmatched ↔ low detections, IoU gate ``low_iou_threshold`` only. A partly
   occluded person's detector score drops; ByteTrack's insight is that these boxes still
   continue a track although they are too unreliable to start one;
5. LOST tracks ↔ remaining high detections (re-identification after an occlusion);
6. TENTATIVE tracks ↔ remaining high detections; a tentative track missed more than
   ``tentative_misses`` times in a row is deleted, so short false positives never become tracks;
7. remaining high detections with score ≥ ``new_track_score`` start tentative tracks;
8. tracks unmatched for more than ``max_age`` s are deleted, and so are unmatched tracks whose
   predicted box has left the image (``image_size`` given: less than ``min_inside`` of its
   area inside), since nobody can be re-detected there.

**Gate** (stages 3, 5, 6): a pair is allowed when IoU(prediction, detection) ≥
``iou_threshold`` *or* the detection lies within the prediction's χ²(4) Mahalanobis gate
``gate`` (:meth:`.kalman.BoxKalmanBatch.gating_distance`); cost = (1 − IoU) + min(d²/gate, 1).
IoU alone fails at low frame rates: a person walking at 1.4 m/s across a VGA view at 4 m moves
0.9 box widths between frames at 3 Hz (IoU ≈ 0.05 with the previous box), and a new track has
no velocity to predict with. The Mahalanobis gate is normalised by the box size and widens
with the time since the last match and the velocity uncertainty (large for a track seen once),
so a new track's second detection is found at any rate; with velocity from those first
matches the prediction is then close again. Stages are ordered (a matching cascade, as in
DeepSORT) because the normalised distance favours uncertain tracks: a lost track with a wide
gate must not take a detection that a visible track explains.

States (``SmplBody.TRACK_*`` + LOST): TENTATIVE until ``min_hits`` matches, then
CONFIRMED while matched, COASTING while unmatched for at most ``max_coast`` s (published, box
= prediction, ``confidence`` decaying as exp(−t/``confidence_tau``)), then LOST (kept for
re-identification, not published, confidence 0) until ``max_age`` s. Ages are seconds of the
given stamps; the gate and the motion model take any frame interval, measured from 3 to 30 Hz
(``scripts/tracking_sweep.py``). Everything is deterministic given the inputs (and ``seed``
for the body-ID session letters).

All tracks' Kalman filters live in one :class:`.kalman.BoxKalmanBatch` (row ``i`` = the
``i``-th track, tracks kept in ``track_id`` order), so that each step is a few array operations
for all tracks together rather than NumPy calls per track.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from .association import assign, iou_matrix, match
from .ids import BodyIdFormat
from .kalman import BoxKalmanBatch, take_rows, xyxy_to_cxcywh

HISTORY = 64      # matches (stamp, filtered cx, cy, w, h) kept per track for the coasting velocity
_ONE = np.array(1.0)   # a 0-d operand: NumPy 2 converts a Python scalar anew on every call


class TrackState(IntEnum):
    TENTATIVE = 0
    CONFIRMED = 1
    COASTING = 2
    LOST = 3          # kept for re-identification; never published


@dataclass(frozen=True)
class TrackView:
    """One live track after an update.

    box: xyxy px; the matched detection's box when matched, else the prediction.
    filtered_box: the Kalman estimate (smoothed box) at this stamp.
    velocity: (vcx, vcy, vw, vh) px/s of the box.
    score: the latest matched detection's score. age, time_since_update: s.
    detection_index: index into this update's ``boxes`` of the matched detection, or None.
    confidence: [0,1]; the detection score when matched, decaying while coasting, 0 when LOST.
    """

    track_id: int
    body_id: str
    state: TrackState
    age: float
    time_since_update: float
    box: np.ndarray
    filtered_box: np.ndarray
    velocity: np.ndarray
    score: float
    hits: int
    detection_index: Optional[int]
    confidence: float = 1.0

    @property
    def published(self) -> bool:
        """Whether the node publishes this track (all states but LOST)."""
        return self.state != TrackState.LOST


@dataclass(frozen=True)
class RemovedTrack:
    track_id: int
    body_id: str
    was_confirmed: bool


class _Track:
    """A track's bookkeeping; its Kalman filter is row ``row`` of the tracker's batch.

    history: (stamp, (cx, cy, w, h) after the update) of the last ``HISTORY`` matches.
    snapshot: state before a LOST track took a detection (probation), see ``Tracker.update``.
    """

    def __init__(self, track_id: int, body_id: str, score: float, stamp: float, z: np.ndarray,
                 row: int) -> None:
        self.track_id, self.body_id, self.row = track_id, body_id, row
        self.start = self.last_update = stamp
        self.score = score
        self.hits = 1
        self.confirmed = False
        self.detection_index: Optional[int] = None
        self.history = deque([(stamp, z)], maxlen=HISTORY)
        self.coasting = False
        self.misses = 0               # consecutive unmatched updates (tentative tracks)
        self.snapshot = None


class _Frame(NamedTuple):
    """One update's detections, shared by its association stages.

    boxes [K,4] xyxy and z [K,4] (cx, cy, w, h), float64; scores [K] as floats; stamp s;
    predicted [T,4] xyxy: every track's box predicted to ``stamp``, before any of this update's
    matches (each stage reads only tracks that no earlier stage matched).
    """

    boxes: np.ndarray
    z: np.ndarray
    scores: List[float]
    stamp: float
    predicted: np.ndarray


class Tracker:
    """Args (plain attributes, changeable between updates):
        iou_threshold: IoU that always passes the gate (``tracker.iou_threshold``).
        gate: χ²(4) Mahalanobis gate (13.28 = 99 %; 0 disables it: IoU only).
        min_hits: matches before a track is CONFIRMED (``tracker.min_hits``).
        max_coast: s an unmatched confirmed track is published (COASTING) before it is LOST.
        max_age: s an unmatched track is kept (COASTING, then LOST) before deletion
            (``tracker.max_age``).
        confidence_tau: s, time constant of the confidence decay while coasting.
        max_height_ratio: an IoU-gated pair must also have box heights within this factor.
        tentative_misses: consecutive misses a TENTATIVE track survives (1: one dropped box at
            3 Hz does not restart a 0.67 s confirmation; 2-frame false positives still die).
        velocity_window: s of matches whose mean centre velocity an unmatched track coasts with.
        high_score / low_score: detection score split of the two stages.
        low_iou_threshold: IoU gate of the low-score stage (those boxes are less sure).
        new_track_score: minimum score to start a track (default: ``high_score``).
        min_inside: see step 8 (fraction of the predicted box area inside the image).
        id_prefix, seed: body-ID format (:class:`.ids.BodyIdFormat`).
    """

    def __init__(self, iou_threshold: float = 0.3, min_hits: int = 3, max_age: float = 2.0,
                 high_score: float = 0.5, low_score: float = 0.1, low_iou_threshold: float = 0.5,
                 new_track_score: Optional[float] = None, min_inside: float = 0.25,
                 id_prefix: str = "", seed: Optional[int] = None, gate: float = 13.28,
                 max_coast: float = 0.5, confidence_tau: float = 0.5,
                 velocity_window: float = 1.0, max_height_ratio: float = 1.3,
                 tentative_misses: int = 1) -> None:
        self.iou_threshold = float(iou_threshold)
        self.gate = float(gate)
        self.min_hits = int(min_hits)
        self.max_age = float(max_age)
        self.max_coast = float(max_coast)
        self.confidence_tau = float(confidence_tau)
        self.velocity_window = float(velocity_window)
        self.max_height_ratio = float(max_height_ratio)
        self.tentative_misses = int(tentative_misses)
        self.high_score = float(high_score)
        self.low_score = float(low_score)
        self.low_iou_threshold = float(low_iou_threshold)
        self.new_track_score = new_track_score
        self.min_inside = float(min_inside)
        self.ids = BodyIdFormat(id_prefix, seed)
        self._next_id = 1
        self._tracks: List[_Track] = []       # in track_id order; _tracks[i].row == i
        self._kf = BoxKalmanBatch()
        self._removed: List[RemovedTrack] = []
        self._stamp: Optional[float] = None

    # ----------------------------------------------------------------------------------
    def update(self, boxes, scores, stamp: float,
               image_size: Optional[Tuple[int, int]] = None) -> List[TrackView]:
        """boxes [K,4] xyxy px, scores [K], stamp s (non-decreasing), optional image_size
        (width, height) → live tracks (LOST ones included, ``published`` False) sorted by
        track_id."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        if np.count_nonzero(np.isfinite(boxes)) + np.count_nonzero(np.isfinite(scores)) < 5 * len(boxes):
            raise ValueError("boxes and scores must be finite (drop NaN/inf detections upstream)")
        stamp = float(stamp)
        if self._stamp is not None and stamp < self._stamp:
            raise ValueError(f"stamp {stamp:.6f} is older than the previous {self._stamp:.6f}; "
                             "call reset() when time jumps back")
        self._stamp = stamp
        self._kf.predict(stamp)
        for track in self._tracks:
            track.detection_index = None
        probation = [t for t in self._tracks if t.snapshot is not None]
        frame = _Frame(boxes, xyxy_to_cxcywh(boxes), scores.tolist(), stamp, self._kf.boxes())

        high = [i for i, score in enumerate(frame.scores) if score >= self.high_score]
        low = [i for i, score in enumerate(frame.scores) if self.low_score <= score < self.high_score]
        # LOST = missed at least one image *and* unmatched for more than max_coast: a track
        # matched in every image stays visible however far apart the images are (a CPU node
        # at 0.5 Hz), so its detections never go through the probation of a re-found track.
        lost, visible, tentative = [], [], []
        for t in self._tracks:
            if not t.confirmed:
                tentative.append(t)
            elif t.coasting and stamp - t.last_update > self.max_coast:
                lost.append(t)
            else:
                visible.append(t)

        left, high = self._associate(visible, high, frame, gated=True)
        self._associate(left, low, frame, gated=False)
        for track in lost:
            if track.snapshot is None:
                self._take_snapshot(track)
        _, high = self._associate(lost, high, frame, gated=True)
        failed, high = self._associate(tentative, high, frame, gated=True)
        # A LOST track that took a detection is published again only when the next image
        # confirms it; otherwise that detection (e.g. a false positive inside the wide gate of a
        # long-lost track) is undone and the track stays LOST with its earlier motion.
        for track in probation:
            if track.detection_index is None:
                self._restore_snapshot(track)
                self._kf.predict(stamp, [track.row])
            else:
                track.snapshot = None
        for track in lost:
            if track.detection_index is None:
                track.snapshot = None
        for track in self._tracks:
            if track.detection_index is None and track.confirmed and not track.coasting:
                self._start_coasting(track)

        dead = []
        for track in failed:
            track.misses += 1
            if track.misses > self.tentative_misses:
                dead.append(track)
        self._drop(dead)
        new_score = self.high_score if self.new_track_score is None else float(self.new_track_score)
        self._start_tracks([i for i in high if frame.scores[i] >= new_score], frame)
        return self._finish(frame, image_size)

    def _associate(self, tracks: List[_Track], det_idx: List[int], frame: _Frame, gated: bool):
        """Match ``tracks`` to detections ``det_idx``; returns (unmatched tracks, unmatched dets).
        gated: IoU ≥ iou_threshold or inside the Mahalanobis gate; else IoU ≥ low_iou_threshold."""
        if not tracks or not det_idx:
            return list(tracks), list(det_idx)
        rows = [t.row for t in tracks]
        predicted, dets = take_rows(frame.predicted, rows), take_rows(frame.boxes, det_idx)
        iou = iou_matrix(predicted, dets)
        if gated and self.gate > 0:
            d2 = self._kf.gating_distance(rows, take_rows(frame.z, det_idx))
            allowed, by_iou = d2 <= self.gate, iou >= self.iou_threshold
            if np.count_nonzero(by_iou > allowed):  # else the IoU path would add no pair
                # IoU alone also passes a small far person's box inside a near person's (IoU = their
                # area ratio): require similar heights on that path; d² checks the size itself.
                ratio = np.abs(np.log(np.maximum(dets[:, 3] - dets[:, 1], 1e-6)[None]
                                      / np.maximum(predicted[:, 3] - predicted[:, 1], 1e-6)[:, None]))
                allowed |= by_iou & (ratio <= math.log(self.max_height_ratio))
            pairs, free_t, free_d = assign(_ONE - iou + np.minimum(d2 / self.gate, _ONE), allowed)
        else:
            pairs, free_t, free_d = match(iou, self.iou_threshold if gated else self.low_iou_threshold)
        if pairs:
            self._hit([tracks[r] for r, _ in pairs], [det_idx[c] for _, c in pairs], frame)
        return [tracks[r] for r in free_t], [det_idx[c] for c in free_d]

    def _hit(self, tracks: List[_Track], det_idx: List[int], frame: _Frame) -> None:
        """Fuse detection ``det_idx[j]`` into ``tracks[j]`` (one Kalman update for all)."""
        states = self._kf.update([t.row for t in tracks], take_rows(frame.z, det_idx))   # [R,8] copy
        stamp = frame.stamp
        for track, i, z in zip(tracks, det_idx, states[:, :4]):
            track.score, track.detection_index, track.last_update = frame.scores[i], i, stamp
            track.hits += 1
            track.confirmed = track.confirmed or track.hits >= self.min_hits
            track.coasting, track.misses = False, 0
            track.history.append((stamp, z))

    def _start_coasting(self, track: _Track) -> None:
        """First miss: from now on predict with the centre's mean velocity over the last
        ``velocity_window`` s of matches, and a constant size. The last few boxes of a person
        walking into an occlusion are cut by the occluder; their centre moves and their size
        shrinks, and the Kalman rates follow, so that a standing person's prediction would drift
        off during a long occlusion. The windowed mean (which those few boxes barely move)
        keeps a walker's real speed."""
        track.coasting = True
        t_end, z_end = track.history[-1]
        recent = [(t, z) for t, z in track.history if t >= t_end - self.velocity_window]
        t0, z0 = recent[0]
        velocity = (z_end[:2] - z0[:2]) / (t_end - t0) if t_end > t0 else np.zeros(2)
        pos, rate = self._kf.pos[track.row], self._kf.rate[track.row]    # views: edit the filter
        pos[:] = z_end
        pos[:2] += velocity * (self._kf.stamp[track.row] - t_end)
        rate[:2], rate[2:] = velocity, 0.0

    def _take_snapshot(self, track: _Track) -> None:
        track.snapshot = (self._kf.get(track.row), track.last_update, track.score, track.hits,
                          track.history.copy())

    def _restore_snapshot(self, track: _Track) -> None:
        kf, track.last_update, track.score, track.hits, track.history = track.snapshot
        self._kf.set(track.row, kf)
        track.snapshot = None
        track.coasting = True

    def _start_tracks(self, det_idx: List[int], frame: _Frame) -> None:
        """A TENTATIVE track (CONFIRMED when min_hits ≤ 1) per detection in ``det_idx``."""
        if not det_idx:
            return
        z = frame.z[det_idx]                                 # a copy: history entries stay put
        self._kf.add(z, frame.stamp)
        for i, zi in zip(det_idx, z):
            track = _Track(self._next_id, self.ids(self._next_id), frame.scores[i], frame.stamp, zi,
                           len(self._tracks))
            track.detection_index = i
            track.confirmed = self.min_hits <= 1
            self._tracks.append(track)
            self._next_id += 1

    def _finish(self, frame: _Frame, image_size: Optional[Tuple[int, int]]) -> List[TrackView]:
        """Step 8 (deletions), then a view per remaining track."""
        stamp = frame.stamp
        predicted = self._kf.boxes()                         # [T,4] xyxy, after this update
        hits = [t.detection_index for t in self._tracks]
        inside = [True] * len(hits)
        if image_size is not None and None in hits:          # only unmatched tracks can leave
            width, height = image_size
            clipped = np.minimum(np.maximum(predicted, 0), [width, height, width, height])
            area = (predicted[:, 2] - predicted[:, 0]) * (predicted[:, 3] - predicted[:, 1])
            inside = ((clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
                      >= self.min_inside * area).tolist()
        dead = [t for t, i, ins in zip(self._tracks, hits, inside)
                if stamp - t.last_update > self.max_age or (i is None and not ins)]
        # Each view's arrays are rows of fresh arrays (never of the filter state or the input).
        matched = [k for k, i in enumerate(hits) if i is not None]   # all: shown = detections
        shown = (take_rows(frame.boxes, hits) if len(matched) == len(hits) else predicted).copy()
        if 0 < len(matched) < len(hits):
            shown[matched] = frame.boxes[[hits[k] for k in matched]]
        gone = {id(t) for t in dead}
        views = [self._view(t, stamp, box, filtered, velocity) for t, box, filtered, velocity
                 in zip(self._tracks, shown, predicted, self._kf.rate.copy()) if id(t) not in gone]
        self._drop(dead)
        return views

    def _view(self, t: _Track, stamp: float, box, filtered_box, velocity) -> TrackView:
        matched = t.detection_index is not None
        since = stamp - t.last_update
        if matched or not t.confirmed:
            state = TrackState.CONFIRMED if t.confirmed else TrackState.TENTATIVE
            confidence = t.score
        elif since <= self.max_coast:
            state = TrackState.COASTING
            confidence = t.score * math.exp(-since / max(self.confidence_tau, 1e-9))
        else:
            state, confidence = TrackState.LOST, 0.0
        if t.snapshot is not None:                       # re-found, awaiting confirmation
            state, confidence = TrackState.LOST, 0.0
        return TrackView(t.track_id, t.body_id, state, stamp - t.start, since, box, filtered_box,
                         velocity, t.score, t.hits, t.detection_index, float(confidence))

    def _drop(self, tracks: List[_Track]) -> None:
        """Delete ``tracks`` (reported by :meth:`pop_removed` in this order)."""
        if not tracks:
            return
        gone = {id(t) for t in tracks}
        self._kf.keep(np.array([id(t) not in gone for t in self._tracks], dtype=bool))
        self._tracks = [t for t in self._tracks if id(t) not in gone]
        for row, track in enumerate(self._tracks):
            track.row = row
        self._removed.extend(RemovedTrack(t.track_id, t.body_id, t.confirmed) for t in tracks)

    # ----------------------------------------------------------------------------------
    def pop_removed(self) -> List[RemovedTrack]:
        """Tracks deleted since the previous call (people who left: delete their markers/TF)."""
        out, self._removed = self._removed, []
        return out

    def reset(self) -> None:
        """Forget all tracks (reported by :meth:`pop_removed`); IDs keep increasing."""
        self._drop(list(self._tracks))
        self._stamp = None

    def __len__(self) -> int:
        return len(self._tracks)
