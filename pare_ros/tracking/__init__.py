"""Multi-person tracking and per-track temporal smoothing (ROS-free).

- :class:`Tracker`: boxes + scores + stamp → :class:`TrackView` per live track (IDs, state,
  matched detection index); ByteTrack-style two-stage IoU/Hungarian association, Kalman
  coasting.
- :class:`BodySmoother`: One Euro smoothing of translation/joints, SO(3) smoothing of
  rotations, running-mean betas, root velocity; visibility-aware.
- :mod:`.occlusion_check`: synthetic-occlusion check of PARE's part visibility.
"""
from .association import iou_matrix, match
from .ids import BodyIdFormat, base36
from .kalman import BoxKalmanFilter
from .one_euro import OneEuroFilter, SO3OneEuroFilter, nearest_rotation
from .smoothing import BodySmoother, SmoothedBody, SmoothingParams
from .tracker import RemovedTrack, Tracker, TrackState, TrackView

__all__ = [
    "iou_matrix", "match", "BodyIdFormat", "base36", "BoxKalmanFilter", "OneEuroFilter",
    "SO3OneEuroFilter", "nearest_rotation", "BodySmoother", "SmoothedBody", "SmoothingParams",
    "RemovedTrack", "Tracker", "TrackState", "TrackView",
]
