"""Person detector for Ultralytics YOLOv8 / YOLO11 ONNX exports, run by onnxruntime.

The export (``yolo export model=yolov8n.pt format=onnx``) takes ``images`` [1,3,S,S] float RGB
in [0,1], letterboxed (aspect kept, grey 114 padding, centred), and returns ``output0``
[1, 4+num_classes, anchors]: per anchor (cx, cy, w, h) in input pixels and one sigmoid score
per class; there is no objectness. Decoding follows Ultralytics' ``non_max_suppression``:
an anchor is a person when its best class is the person class and that score exceeds the
threshold; then greedy NMS (``cv2.dnn.NMSBoxes``) and the letterbox is undone.
"""
from __future__ import annotations

import ast
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .. import model_files
from .base import BaseDetector, Detections, nms

log = logging.getLogger("pare_ros")

EXPORT_HINT = ("export one with Ultralytics (pip install ultralytics): "
               "`yolo export model=yolov8n.pt format=onnx` (YOLO11: model=yolo11n.pt), then put "
               "the .onnx at {default} or point detector.model_path at it")


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed in the network input: input = image · scale + (pad_x, pad_y)."""

    scale: float
    pad_x: int
    pad_y: int

    def to_image(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Input-pixel boxes [K,4] → source-image pixels."""
        pad = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64)
        return (np.asarray(boxes_xyxy, dtype=np.float64) - pad) / self.scale


def letterbox(image: np.ndarray, size_hw: Tuple[int, int], pad_value: int = 114
              ) -> Tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``size_hw`` exactly as Ultralytics' LetterBox
    (centred; the odd pixel goes to the bottom/right through its ``round(d ∓ 0.1)``)."""
    height, width = image.shape[:2]
    out_h, out_w = size_hw
    r = min(out_h / height, out_w / width)
    new_w, new_h = int(round(width * r)), int(round(height * r))
    dw, dh = (out_w - new_w) / 2, (out_h - new_h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    if (new_w, new_h) != (width, height):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                value=(pad_value,) * 3)
    return padded, Letterbox(r, left, top)


def check_output_layout(shape: Sequence, num_classes: Optional[int] = None,
                        person_class: int = 0) -> int:
    """Validate an output shape [1, 4+num_classes, anchors]; returns num_classes.

    Symbolic (None/str) dims are accepted where they cannot be checked."""
    dims = list(shape)
    hint = ("expected the Ultralytics YOLOv8/YOLO11 detection layout [1, 4+num_classes, anchors] "
            "(e.g. [1, 84, 8400]), got {}. Transposed [1, anchors, 84] outputs, YOLOv5 exports "
            "(with objectness), end-to-end/NMS exports ([1, 300, 6], YOLOv10 or nms=True) and "
            "segmentation/pose models are not supported: export a plain detection model with "
            "`yolo export model=yolov8n.pt format=onnx`")
    if len(dims) != 3:
        raise ValueError(hint.format(dims))
    batch, channels, anchors = (d if isinstance(d, (int, np.integer)) else None for d in dims)
    if batch not in (None, 1) or (channels is not None and channels < 5) \
            or (channels is not None and anchors is not None and channels >= anchors):
        raise ValueError(hint.format(dims))
    if channels is None:
        return num_classes if num_classes is not None else -1
    if num_classes is not None and channels != 4 + num_classes:
        raise ValueError(f"output has {channels - 4} classes, num_classes={num_classes} was given")
    if not 0 <= person_class < channels - 4:
        raise ValueError(f"person_class {person_class} outside the model's {channels - 4} classes")
    return channels - 4


def decode_yolo(output: np.ndarray, score_threshold: float, nms_iou: float,
                person_class: int = 0, max_det: int = 300) -> Tuple[np.ndarray, np.ndarray]:
    """[1, 4+C, A] raw output → person boxes [K,4] xyxy in input pixels and scores [K],
    best first, after the class filter, the score threshold and NMS."""
    check_output_layout(output.shape, person_class=person_class)
    pred = np.asarray(output[0], dtype=np.float32).T                  # [A, 4+C]
    cls = pred[:, 4:]
    best = cls.argmax(axis=1)
    conf = cls[np.arange(len(cls)), best]
    # Ultralytics' single-label rule: the anchor's best class must be the person class.
    sel = np.flatnonzero((best == person_class) & (conf > score_threshold))
    if len(sel) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    cx, cy, w, h = pred[sel, :4].T
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keep = nms(boxes, conf[sel], nms_iou, score_threshold)[:max_det]
    return boxes[keep].astype(np.float32), conf[sel][keep].astype(np.float32)


def _class_names(session) -> Dict[int, str]:
    """Ultralytics writes ``names`` ("{0: 'person', ...}") into the ONNX metadata."""
    text = session.get_modelmeta().custom_metadata_map.get("names")
    if not text:
        return {}
    try:
        names = ast.literal_eval(text)          # a literal only; never evaluates code
        return {int(k): str(v) for k, v in names.items()}
    except (ValueError, SyntaxError, AttributeError, TypeError):
        return {}


class YoloOnnxDetector(BaseDetector):
    """YOLOv8/YOLO11 ONNX person detector.

    Args:
        model_path: the ``.onnx``; None/"" = the manifest default ``model/detector/yolov8n.onnx``.
        score_threshold: person score threshold (strictly above), [0,1].
        nms_iou: IoU above which NMS suppresses the lower-scored box.
        max_people / min_box_height: the shared post-filter (:func:`filter_detections`).
        providers: onnxruntime execution providers (default CPU only).
        imgsz: network input side (or (h, w)) when the model's input size is dynamic.
        person_class: class index of "person" (0 in COCO-trained models).
        max_det: at most this many boxes leave NMS (Ultralytics' default 300).

    ``last_timings`` holds the seconds of the latest call's preprocess/inference/postprocess.
    """

    def __init__(self, model_path: Optional[str | Path] = None, score_threshold: float = 0.5,
                 nms_iou: float = 0.45, max_people: Optional[int] = 8, min_box_height: float = 48.0,
                 providers: Optional[Sequence] = None, imgsz: int | Tuple[int, int] = 640,
                 person_class: int = 0, max_det: int = 300, session_options=None) -> None:
        super().__init__(min_box_height, max_people)
        import onnxruntime as ort

        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.person_class = int(person_class)
        self.max_det = int(max_det)
        default = model_files.model_root(None) / model_files.entry("person_detector").path
        path = Path(model_path).expanduser() if model_path else model_files.resolve("person_detector")
        if not path.is_file():
            raise model_files.MissingModelFileError(
                f"person detector ONNX not found: {path}\n  " + EXPORT_HINT.format(default=default))
        self.model_path = path
        self.session = ort.InferenceSession(str(path), sess_options=session_options,
                                            providers=list(providers or ["CPUExecutionProvider"]))
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(f"{path}: expected one image input [1,3,H,W], got "
                             f"{[(i.name, i.shape) for i in inputs]}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.input_dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
        h, w = inputs[0].shape[2:]
        self.input_hw = (h if isinstance(h, int) else int(size[0]), w if isinstance(w, int) else int(size[1]))
        self.num_classes = check_output_layout(outputs[0].shape, person_class=self.person_class)
        names = _class_names(self.session)
        if names and names.get(self.person_class) != "person":
            log.warning("%s: class %d is %r, not 'person'", path, self.person_class,
                        names.get(self.person_class))
        self.last_timings: Dict[str, float] = {}

    def _detect(self, image_rgb: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        padded, lb = letterbox(image_rgb, self.input_hw)
        blob = (padded.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).astype(self.input_dtype)
        t1 = time.perf_counter()
        out = self.session.run([self.output_name], {self.input_name: blob})[0]
        t2 = time.perf_counter()
        boxes, scores = decode_yolo(out, self.score_threshold, self.nms_iou,
                                    self.person_class, self.max_det)
        dets = Detections(lb.to_image(boxes), scores)
        self.last_timings = {"preprocess": t1 - t0, "inference": t2 - t1,
                             "postprocess": time.perf_counter() - t2}
        return dets
