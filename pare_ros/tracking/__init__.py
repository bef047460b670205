"""Multi-person tracking and per-track temporal smoothing (ROS-free).

- :class:`Tracker`: boxes + scores + stamp → :class:`TrackView` per live track (IDs, state,
  confidence, matched detection index); ByteTrack-style two-stage association with an IoU or
  Mahalanobis gate, Kalman coasting, a LOST state for re-identification after occlusions.
- :class:`BodySmoother`: batched per-frame smoothing of SMPL parameters (Kalman root
  translation with velocity and its covariance, SO(3) One Euro rotations, forgetting-mean
  betas), rejecting one-frame outliers; visibility-aware.
- :mod:`.occlusion_check`: synthetic-occlusion check of PARE's part visibility.
"""
from .association import assign, iou_matrix, match
from .ids import BodyIdFormat, base36
from .kalman import BoxKalmanFilter
from .one_euro import OneEuroFilter, SO3OneEuroFilter, nearest_rotation, so3_one_euro_step
from .smoothing import BodySmoother, SmoothedBatch, SmoothingParams
from .tracker import RemovedTrack, Tracker, TrackState, TrackView

__all__ = [
    "assign", "iou_matrix", "match", "BodyIdFormat", "base36", "BoxKalmanFilter", "OneEuroFilter",
    "SO3OneEuroFilter", "nearest_rotation", "so3_one_euro_step", "BodySmoother", "SmoothedBatch",
    "SmoothingParams", "RemovedTrack", "Tracker", "TrackState", "TrackView",
]
