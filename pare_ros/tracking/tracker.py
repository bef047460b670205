"""Multi-person box tracker: IoU + Hungarian, two-stage association (ByteTrack), Kalman coasting.

Per ``update(boxes, scores, stamp)``:

1. every track's box is predicted to ``stamp`` (constant velocity, :mod:`.kalman`);
2. detections split into *high* (score ≥ ``high_score``) and *low* (``low_score`` ≤ score <
   ``high_score``); lower ones are ignored;
3. confirmed tracks (matched or coasting) ↔ high detections, gate IoU ≥ ``iou_threshold``;
4. confirmed tracks still unmatched ↔ low detections, stricter gate ``low_iou_threshold``.
   A partly occluded person's detector score drops; ByteTrack's insight is that these boxes
   still continue an existing track although they are too unreliable to start one. (ByteTrack
   offers them only to tracks matched in the previous frame; we also offer them to coasting
   tracks, behind the stricter gate, because a node skipping frames sees short gaps often.)
5. tentative tracks ↔ remaining high detections; an unmatched tentative track is deleted at
   once, so one-off false positives never become tracks;
6. remaining high detections with score ≥ ``new_track_score`` start tentative tracks;
7. confirmed tracks unmatched for more than ``max_age`` seconds are deleted, and so are
   coasting tracks whose predicted box has left the image (when ``image_size`` is given:
   less than ``min_inside`` of its area inside), since nobody can be re-detected there.

States (``SmplBody.TRACK_*``): TENTATIVE until ``min_hits`` consecutive matches, then
CONFIRMED while matched, COASTING while unmatched (box = prediction). Ages are seconds of the
given stamps, so the tracker behaves the same at any frame rate. Everything is deterministic
given the inputs (and ``seed`` for the body-ID session letters).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import List, Optional, Tuple

import numpy as np

from .association import iou_matrix, match
from .ids import BodyIdFormat
from .kalman import BoxKalmanFilter


class TrackState(IntEnum):
    TENTATIVE = 0
    CONFIRMED = 1
    COASTING = 2


@dataclass(frozen=True)
class TrackView:
    """One live track after an update.

    box: xyxy px; the matched detection's box when matched, else the prediction.
    filtered_box: the Kalman estimate (smoothed box) at this stamp.
    velocity: (vcx, vcy, vw, vh) px/s of the box.
    score: the latest matched detection's score. age, time_since_update: s.
    detection_index: index into this update's ``boxes`` of the matched detection, or None.
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


@dataclass(frozen=True)
class RemovedTrack:
    track_id: int
    body_id: str
    was_confirmed: bool


class _Track:
    def __init__(self, track_id: int, body_id: str, box, score: float, stamp: float) -> None:
        self.track_id, self.body_id = track_id, body_id
        self.kf = BoxKalmanFilter(box, stamp)
        self.start = self.last_update = float(stamp)
        self.score = float(score)
        self.hits = 1
        self.confirmed = False
        self.box = np.asarray(box, dtype=np.float64)
        self.detection_index: Optional[int] = None

    def hit(self, box, score: float, index: int, stamp: float, min_hits: int) -> None:
        self.kf.update(box)
        self.box = np.asarray(box, dtype=np.float64)
        self.score, self.detection_index, self.last_update = float(score), index, float(stamp)
        self.hits += 1
        self.confirmed = self.confirmed or self.hits >= min_hits


class Tracker:
    """Args (plain attributes, changeable between updates):
        iou_threshold: gate of the high-score stage (``tracker.iou_threshold``).
        min_hits: consecutive matches before a track is CONFIRMED (``tracker.min_hits``).
        max_age: s a confirmed track may coast before deletion (``tracker.max_age``).
        high_score / low_score: detection score split of the two stages.
        low_iou_threshold: gate of the low-score stage (stricter: those boxes are less sure).
        new_track_score: minimum score to start a track (default: ``high_score``).
        min_inside: see step 7 (fraction of the predicted box area inside the image).
        id_prefix, seed: body-ID format (:class:`.ids.BodyIdFormat`).
    """

    def __init__(self, iou_threshold: float = 0.3, min_hits: int = 3, max_age: float = 0.5,
                 high_score: float = 0.5, low_score: float = 0.1, low_iou_threshold: float = 0.5,
                 new_track_score: Optional[float] = None, min_inside: float = 0.25,
                 id_prefix: str = "", seed: Optional[int] = None) -> None:
        self.iou_threshold = float(iou_threshold)
        self.min_hits = int(min_hits)
        self.max_age = float(max_age)
        self.high_score = float(high_score)
        self.low_score = float(low_score)
        self.low_iou_threshold = float(low_iou_threshold)
        self.new_track_score = new_track_score
        self.min_inside = float(min_inside)
        self.ids = BodyIdFormat(id_prefix, seed)
        self._next_id = 1
        self._tracks: List[_Track] = []
        self._removed: List[RemovedTrack] = []
        self._stamp: Optional[float] = None

    # ----------------------------------------------------------------------------------
    def update(self, boxes, scores, stamp: float,
               image_size: Optional[Tuple[int, int]] = None) -> List[TrackView]:
        """boxes [K,4] xyxy px, scores [K], stamp s (non-decreasing), optional image_size
        (width, height) → live tracks sorted by track_id."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        stamp = float(stamp)
        if self._stamp is not None and stamp < self._stamp:
            raise ValueError(f"stamp {stamp:.6f} is older than the previous {self._stamp:.6f}; "
                             "call reset() when time jumps back")
        self._stamp = stamp
        for track in self._tracks:
            track.kf.predict(stamp)
            track.detection_index = None

        high = [i for i in range(len(boxes)) if scores[i] >= self.high_score]
        low = [i for i in range(len(boxes)) if self.low_score <= scores[i] < self.high_score]
        established = [t for t in self._tracks if t.confirmed]
        tentative = [t for t in self._tracks if not t.confirmed]

        left_tracks, high = self._associate(established, high, boxes, scores, stamp, self.iou_threshold)
        self._associate(left_tracks, low, boxes, scores, stamp, self.low_iou_threshold)
        failed, high = self._associate(tentative, high, boxes, scores, stamp, self.iou_threshold)

        for track in failed:                                   # one miss ends a tentative track
            self._remove(track)
        new_score = self.high_score if self.new_track_score is None else float(self.new_track_score)
        for i in high:
            if scores[i] >= new_score:
                track = _Track(self._next_id, self.ids(self._next_id), boxes[i], scores[i], stamp)
                track.detection_index = i
                track.confirmed = self.min_hits <= 1
                self._tracks.append(track)
                self._next_id += 1
        for track in [t for t in self._tracks if stamp - t.last_update > self.max_age
                      or (t.detection_index is None and not self._inside(t.kf.box, image_size))]:
            self._remove(track)
        return [self._view(t, stamp) for t in sorted(self._tracks, key=lambda t: t.track_id)]

    def _associate(self, tracks, det_idx, boxes, scores, stamp, min_iou):
        """Match ``tracks`` to detections ``det_idx``; returns (unmatched tracks, unmatched dets)."""
        if not tracks or not det_idx:
            return list(tracks), list(det_idx)
        predicted = np.array([t.kf.box for t in tracks])
        pairs, free_t, free_d = match(iou_matrix(predicted, boxes[det_idx]), min_iou)
        for r, c in pairs:
            i = det_idx[c]
            tracks[r].hit(boxes[i], scores[i], i, stamp, self.min_hits)
        return [tracks[r] for r in free_t], [det_idx[c] for c in free_d]

    def _inside(self, box: np.ndarray, image_size: Optional[Tuple[int, int]]) -> bool:
        if image_size is None:
            return True
        width, height = image_size
        clipped = np.clip(box, 0, [width, height, width, height])
        area = (box[2] - box[0]) * (box[3] - box[1])
        inside = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1])
        return inside >= self.min_inside * area

    def _view(self, t: _Track, stamp: float) -> TrackView:
        matched = t.detection_index is not None
        state = (TrackState.COASTING if not matched and t.confirmed else
                 TrackState.CONFIRMED if t.confirmed else TrackState.TENTATIVE)
        return TrackView(t.track_id, t.body_id, state, stamp - t.start, stamp - t.last_update,
                         t.box.copy() if matched else t.kf.box, t.kf.box, t.kf.velocity, t.score,
                         t.hits, t.detection_index)

    def _remove(self, track: _Track) -> None:
        self._tracks.remove(track)
        self._removed.append(RemovedTrack(track.track_id, track.body_id, track.confirmed))

    # ----------------------------------------------------------------------------------
    def pop_removed(self) -> List[RemovedTrack]:
        """Tracks deleted since the previous call (people who left: delete their markers/TF)."""
        out, self._removed = self._removed, []
        return out

    def removed_ids(self) -> List[int]:
        """track_ids deleted since the previous call of this or :meth:`pop_removed`."""
        return [r.track_id for r in self.pop_removed()]

    def reset(self) -> None:
        """Forget all tracks (reported by :meth:`pop_removed`); IDs keep increasing."""
        for track in list(self._tracks):
            self._remove(track)
        self._stamp = None

    def __len__(self) -> int:
        return len(self._tracks)
