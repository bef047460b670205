"""Person detectors: image → person boxes for PARE's crops (ROS-free).

Every detector has ``detect(image_rgb uint8 [H,W,3]) -> Detections`` (boxes [K,4] xyxy float32
pixels, scores [K] float32) and applies the shared post-filter (clip to the image, drop boxes
shorter than ``min_box_height`` px, keep the best ``max_people`` by score then area).
"""
from .base import BaseDetector, Detections, PersonDetector, box_areas, filter_detections, nms
from .detection2d import boxes_from_detection2d_array
from .factory import make_detector
from .fixed import FixedRegionDetector
from .hog import HogPeopleDetector, margin_to_score
from .yolo_onnx import Letterbox, YoloOnnxDetector, check_output_layout, decode_yolo, letterbox

__all__ = [
    "BaseDetector", "Detections", "PersonDetector", "box_areas", "filter_detections", "nms",
    "boxes_from_detection2d_array", "make_detector", "FixedRegionDetector", "HogPeopleDetector",
    "margin_to_score", "Letterbox", "YoloOnnxDetector", "check_output_layout", "decode_yolo",
    "letterbox",
]
