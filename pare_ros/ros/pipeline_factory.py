"""Building the node's pipeline from its parameters, with start-up errors made readable."""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from .. import model_files
from ..assets import AssetReport, build_estimator
from ..backends.select import BackendUnavailable, select_backend
from ..host_threads import limit_host_threads
from ..model_files import MissingModelFileError
from ..network import CheckpointError, UnsupportedConfigError
from ..safe_load import CorruptFileError, UnsafeFileError
from .frame_processor import FrameProcessor
from .frame_types import ProcessorSettings


class StartupError(RuntimeError):
    """The node cannot start; the message says exactly why (no traceback needed)."""


def _path(value: str):
    return Path(value).expanduser() if value else None


def detector_params(node) -> dict:
    p = node.p
    model_path = p("detector.model_path") or None
    if model_path is None and p("detector.kind") == "yolo" and p("model.dir"):
        # The YOLO file lives with the other model files: follow model.dir like they do.
        model_path = str(model_files.resolve("person_detector", _path(p("model.dir"))))
    return dict(score_threshold=float(p("detector.score_threshold")), nms_iou=float(p("detector.nms_iou")),
                max_people=int(p("detector.max_people")), min_box_height=float(p("detector.min_box_height")),
                model_path=model_path)


def tracker_params(node) -> dict:
    p = node.p
    return dict(iou_threshold=float(p("tracker.iou_threshold")), min_hits=int(p("tracker.min_hits")),
                max_age=float(p("tracker.max_age")), high_score=float(p("tracker.high_score")),
                gate=float(p("tracker.gate")), max_coast=float(p("tracker.max_coast")),
                confidence_tau=float(p("tracker.confidence_tau")))


def smoothing_params(node) -> dict:
    """SmoothingParams fields set from the node's smoothing.* parameters."""
    p = node.p
    return dict(rot_gate_deg=float(p("smoothing.rot_gate_deg")), gate=float(p("smoothing.transl_gate")),
                betas_half_life=float(p("smoothing.betas_half_life")))


def parse_boxes(text: str) -> list:
    """'x0,y0,x1,y1;...' → list of 4-tuples (empty text: no boxes)."""
    boxes = []
    for item in filter(None, (part.strip() for part in str(text).split(";"))):
        values = [float(v) for v in item.split(",")]
        if len(values) != 4:
            raise ValueError(f"bad box {item!r} in detector.fixed_boxes: expected x0,y0,x1,y1")
        boxes.append(tuple(values))
    return boxes


class FixedBoxesDetector:
    """Detector kind 'fixed': the boxes of ``detector.fixed_boxes``, in their given order, each
    clipped to the image and dropped when empty or shorter than ``min_box_height`` (the shared
    post-filter's first steps), then the first ``max_people``; none when empty.

    ``parts``: one :class:`~pare_ros.detection.fixed.FixedRegionDetector` per box (which checks
    it); ``detect`` filters all boxes in one vectorised pass rather than one per part.
    """

    def __init__(self, boxes, min_box_height: float, max_people: int) -> None:
        from ..detection.fixed import FixedRegionDetector

        self.parts = [FixedRegionDetector(box=b, min_box_height=min_box_height, max_people=1)
                      for b in boxes]
        self.min_box_height = float(min_box_height)
        self.max_people = max_people

    def detect(self, image_rgb):
        from ..detection.base import Detections, check_image, clip_detections

        height, width = check_image(image_rgb).shape[:2]
        boxes = np.array([part.box for part in self.parts], np.float32).reshape(-1, 4)
        scores = np.array([part.score for part in self.parts], np.float32)
        kept = clip_detections(Detections(boxes, scores), (width, height), self.min_box_height)
        return kept.subset(slice(self.max_people))


class UpstreamDetections:
    """Detector kind 'topic': boxes come with each frame from an upstream detector topic
    (the node passes them to ``FrameProcessor.process``); on its own it sees nobody."""

    def detect(self, image_rgb):
        from ..detection.base import Detections

        return Detections()


def make_detector(node):
    params = detector_params(node)
    if node.p("detector.kind") == "topic":
        return UpstreamDetections()
    if node.p("detector.kind") == "fixed":
        return FixedBoxesDetector(parse_boxes(node.p("detector.fixed_boxes")),
                                  params["min_box_height"], params["max_people"])
    from ..detection import make_detector as factory

    return factory(node.p("detector.kind"), **params)


def make_tracker(node):
    from ..tracking import Tracker

    return Tracker(id_prefix=node.p("tracker.id_prefix"), **tracker_params(node))


def build_processor(node, settings: ProcessorSettings) -> Tuple[FrameProcessor, str, AssetReport]:
    """Estimator, detector and tracker from the node's parameters.

    Raises:
        StartupError: a model file is missing or unusable, or a parameter is invalid.
    """
    p = node.p
    try:
        estimator, report = build_estimator(
            checkpoint=_path(p("model.checkpoint")), config=_path(p("model.config")),
            model_dir=_path(p("model.dir")), smpl_dir=_path(p("smpl.model_dir")),
            gender=p("smpl.gender"), box_scale=float(p("model.box_scale")), device=p("device"),
            allow_untrained=bool(p("model.allow_untrained")))
        detector = make_detector(node)
        estimator.backend, reason = select_backend(
            p("backend"), model=estimator.backend,
            onnx_path=_path(p("model.onnx_path")) or model_files.resolve("pare_onnx", _path(p("model.dir"))),
            precision=p("model.precision"), max_batch=int(p("model.max_batch")),
            engine_policy=p("model.engine_policy"))
    except (MissingModelFileError, FileNotFoundError, CheckpointError, CorruptFileError,
            UnsafeFileError, UnsupportedConfigError, BackendUnavailable, ValueError,
            RuntimeError) as exc:
        raise StartupError(str(exc)) from exc
    report.backend = reason
    report.host_threads = limit_host_threads(
        int(p("host_threads")), torch_runs_network_on_cpu=_torch_network_on_cpu(estimator.backend)).describe()
    short = {"TorchBackend": f"pytorch-{p('device')}", "OnnxRuntimeBackend": "onnxruntime-cpu",
             "TensorRTBackend": f"tensorrt-{p('model.precision')}"}
    label = f"pare-hrnet_w32/{short.get(type(estimator.backend).__name__, type(estimator.backend).__name__)}"
    from ..tracking import BodySmoother, SmoothingParams

    smoother = BodySmoother(SmoothingParams(**smoothing_params(node))) if p("smoothing.enable") else None
    processor = FrameProcessor(estimator, detector, make_tracker(node), settings,
                               smpl_model=p("smpl.gender"), estimator_name=label, smoother=smoother)
    return processor, label, report


def _torch_network_on_cpu(backend) -> bool:
    """The network runs through torch on the CPU (in torch's own thread pool)."""
    from ..backends.torch_backend import TorchBackend

    return isinstance(backend, TorchBackend) and backend.device.type == "cpu"


def reconfigure(processor: FrameProcessor, node) -> None:
    """Apply changed detector/tracker/smoothing parameters without losing the tracks."""
    processor.detector = make_detector(node)
    for name, value in tracker_params(node).items():
        setattr(processor.tracker, name, value)
    if processor.smoother is not None:
        for name, value in smoothing_params(node).items():
            setattr(processor.smoother.params, name, value)
