"""``make_detector(kind, **params)``: a detector from the node's ``detector.*`` parameters."""
from __future__ import annotations

import inspect

from .base import PersonDetector
from .fixed import FixedRegionDetector
from .hog import HogPeopleDetector
from .yolo_onnx import YoloOnnxDetector

KINDS = {
    "yolo": YoloOnnxDetector,
    "hog": HogPeopleDetector,
    "full_frame": FixedRegionDetector,
    "fixed": FixedRegionDetector,
}
# Parameters the node passes to every kind; a kind that has no use for one ignores it when it
# is unset/default-like (e.g. model_path for HOG) instead of refusing to start.
_SHARED = ("score_threshold", "nms_iou", "max_people", "min_box_height", "model_path")


def make_detector(kind: str, **params) -> PersonDetector:
    """``kind``: "yolo" (:class:`YoloOnnxDetector`), "hog" (:class:`HogPeopleDetector`),
    "full_frame" (whole image) or "fixed" (needs ``box``) (:class:`FixedRegionDetector`).

    Raises ValueError for an unknown kind or a parameter the kind does not take.
    """
    key = str(kind).strip().lower()
    if key not in KINDS:
        raise ValueError(f"unknown detector kind {kind!r}; choose one of {', '.join(KINDS)}")
    cls = KINDS[key]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    if key == "full_frame" and params.get("box") is not None:
        raise ValueError("detector kind 'full_frame' takes no box; use kind 'fixed'")
    if key == "fixed" and params.get("box") is None:
        raise ValueError("detector kind 'fixed' needs box=(x_min, y_min, x_max, y_max)")
    kwargs = {}
    for name, value in params.items():
        if name in accepted:
            kwargs[name] = value
        elif name not in _SHARED:
            raise ValueError(f"detector kind {key!r} has no parameter {name!r}; it takes "
                             f"{', '.join(sorted(accepted))}")
        elif name == "model_path" and value:
            raise ValueError(f"detector.model_path is set ({value!r}) but detector kind {key!r} "
                             "uses no model; set kind 'yolo' or clear model_path")
    return cls(**kwargs)
