"""Person detectors: YOLO ONNX decoding on graphs built here, HOG on a real photograph, the
shared post-filter, Detection2DArray conversion, the fixed-region detector and the factory."""
from __future__ import annotations

import time
from types import SimpleNamespace as NS

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pare_ros.detection import (Detections, FixedRegionDetector, HogPeopleDetector,
                                YoloOnnxDetector, boxes_from_detection2d_array, filter_detections,
                                letterbox, make_detector, margin_to_score)
from pare_ros.model_files import MissingModelFileError

NUM_CLASSES = 80


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def write_yolo_graph(path, raw, input_hw=(640, 640), transposed=False, names=None):
    """An ONNX graph 'images' [1,3,H,W] → 'output0' = raw + 0·mean(images): the constant
    detection tensor ``raw`` [1, 4+C, A], computed through the input so that onnxruntime really
    consumes the letterboxed blob. Symbolic input dims when ``input_hw`` is None."""
    raw = np.asarray(raw, np.float32)
    if transposed:
        raw = np.ascontiguousarray(raw.transpose(0, 2, 1))
    dims = [1, 3, *input_hw] if input_hw else [1, 3, "height", "width"]
    nodes = [
        helper.make_node("Constant", [], ["raw"], value=numpy_helper.from_array(raw, "raw_value")),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.zeros(1, np.float32), "z")),
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["raw", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "yolo_stub",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(raw.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if names is not None:
        helper.set_model_props(model, {"names": str(names)})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def anchors(specs, count=8400, seed=0):
    """[1, 84, count]: anchors from (cx, cy, w, h, class, score) specs (input pixels), the rest
    with random boxes and class scores below 0.1 like the background of a real output."""
    rng = np.random.default_rng(seed)
    raw = np.zeros((1, 4 + NUM_CLASSES, count), np.float32)
    raw[0, :2] = rng.uniform(0, 640, (2, count))
    raw[0, 2:4] = rng.uniform(4, 100, (2, count))
    raw[0, 4:] = rng.uniform(0, 0.1, (NUM_CLASSES, count))
    for i, (cx, cy, w, h, cls, score) in enumerate(specs):
        raw[0, :4, i] = (cx, cy, w, h)
        raw[0, 4:, i] = 0.01
        raw[0, 4 + cls, i] = score
    return raw


def to_input(box, r=0.5, pad=(0, 140)):
    """Original-image xyxy → (cx, cy, w, h) in the letterboxed 640 input of a 1280×720 image."""
    x0, y0, x1, y1 = np.asarray(box) * r + [pad[0], pad[1], pad[0], pad[1]]
    return (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0


PERSON_A, PERSON_B = (100, 200, 300, 600), (800, 100, 1000, 500)
SPECS = [
    (*to_input(PERSON_A), 0, 0.90),
    (*to_input(np.add(PERSON_A, (6, 4, 6, 4))), 0, 0.80),          # duplicate: NMS removes it
    (*to_input(PERSON_B), 0, 0.60),
    (*to_input((500, 300, 600, 500)), 0, 0.20),                      # below the score threshold
    (*to_input((420, 80, 520, 260)), 2, 0.95),                       # a car
    (*to_input((1050, 300, 1150, 600)), 5, 0.80),                    # bus beats person (0.7 below)
    (*to_input((1150, 200, 1400, 650)), 0, 0.70),                    # crosses the right border
]


@pytest.fixture(scope="module")
def yolo_model(tmp_path_factory):
    raw = anchors(SPECS)
    raw[0, 4, 5] = 0.70                                              # person score under the bus
    return write_yolo_graph(tmp_path_factory.mktemp("yolo") / "stub.onnx", raw,
                            names={i: "person" if i == 0 else f"c{i}" for i in range(NUM_CLASSES)})


def test_letterbox_matches_ultralytics_geometry():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    out, lb = letterbox(image, (640, 640))
    assert out.shape == (640, 640, 3) and (lb.scale, lb.pad_x, lb.pad_y) == (0.5, 0, 140)
    assert (out[:140] == 114).all() and (out[500:] == 114).all()
    np.testing.assert_array_equal(out[140:500], cv2.resize(image, (640, 360), interpolation=cv2.INTER_LINEAR))
    # Odd padding and a non-square input: 641×321 into 480×640 (h, w).
    out, lb = letterbox(image[:321, :641], (480, 640))
    new_h = int(round(321 * lb.scale))
    assert out.shape == (480, 640, 3) and lb.scale == pytest.approx(640 / 641)
    assert lb.pad_y == int(round((480 - new_h) / 2 - 0.1)) and lb.pad_x == 0
    assert (out[:lb.pad_y] == 114).all() and (out[lb.pad_y + new_h:] == 114).all()
    assert not (out[lb.pad_y:lb.pad_y + new_h] == 114).all()
    # Mapping back inverts the placement.
    np.testing.assert_allclose(lb.to_image([[lb.pad_x, lb.pad_y, lb.pad_x + 640, lb.pad_y + new_h]]),
                               [[0, 0, 640 / lb.scale, new_h / lb.scale]], rtol=1e-9)


def test_yolo_decodes_letterboxed_people(yolo_model):
    det = YoloOnnxDetector(yolo_model, score_threshold=0.5, nms_iou=0.45, max_people=8, min_box_height=0)
    assert det.input_hw == (640, 640) and det.num_classes == NUM_CLASSES
    image = np.zeros((720, 1280, 3), np.uint8)
    out = det.detect(image)
    # A (0.90; duplicate suppressed), the border-crossing one (0.70, clipped at x=1280), B (0.60).
    # Dropped: score 0.20, the car, and the anchor whose best class is "bus".
    np.testing.assert_allclose(out.scores, [0.90, 0.70, 0.60], atol=1e-6)
    np.testing.assert_allclose(out.boxes, [PERSON_A, (1150, 200, 1280, 650), PERSON_B], atol=1e-3)
    assert set(det.last_timings) == {"preprocess", "inference", "postprocess"}


def test_yolo_thresholds_and_nms_are_applied(yolo_model):
    image = np.zeros((720, 1280, 3), np.uint8)
    strict = YoloOnnxDetector(yolo_model, score_threshold=0.65, min_box_height=0).detect(image)
    np.testing.assert_allclose(strict.scores, [0.90, 0.70], atol=1e-6)
    loose_nms = YoloOnnxDetector(yolo_model, score_threshold=0.5, nms_iou=0.99, min_box_height=0).detect(image)
    np.testing.assert_allclose(loose_nms.scores, [0.90, 0.80, 0.70, 0.60], atol=1e-6)
    np.testing.assert_allclose(loose_nms.boxes[1], np.add(PERSON_A, (6, 4, 6, 4)), atol=1e-3)
    low = YoloOnnxDetector(yolo_model, score_threshold=0.15, min_box_height=0).detect(image)
    assert len(low) == 4 and low.scores[-1] == pytest.approx(0.20)
    # Post-filter inside detect(): min_box_height and max_people.
    tall = YoloOnnxDetector(yolo_model, min_box_height=420, max_people=8).detect(image)
    np.testing.assert_allclose(tall.scores, [0.70], atol=1e-6)                # 450 px tall
    one = YoloOnnxDetector(yolo_model, max_people=1, min_box_height=0).detect(image)
    assert len(one) == 1 and one.scores[0] == pytest.approx(0.90)


def test_yolo_dynamic_input_uses_imgsz(tmp_path):
    # Box given in a 320×320 input; a 1280×720 image is letterboxed with r=0.25, pad_y=70.
    raw = anchors([(160, 70 + 100, 80, 120, 0, 0.9)], count=2100)
    det = YoloOnnxDetector(write_yolo_graph(tmp_path / "dyn.onnx", raw, input_hw=None), imgsz=320,
                           min_box_height=0)
    assert det.input_hw == (320, 320)
    out = det.detect(np.zeros((720, 1280, 3), np.uint8))
    np.testing.assert_allclose(out.boxes, [[(120) * 4, 110 * 4 - 280, 200 * 4, 230 * 4 - 280]], atol=1e-3)


def test_yolo_refuses_wrong_output_layout(tmp_path):
    path = write_yolo_graph(tmp_path / "t.onnx", anchors(SPECS), transposed=True)
    with pytest.raises(ValueError, match=r"\[1, 4\+num_classes, anchors\]"):
        YoloOnnxDetector(path)


def test_yolo_missing_model_says_how_to_export(tmp_path):
    missing = tmp_path / "nope" / "yolov8n.onnx"
    with pytest.raises(MissingModelFileError) as err:
        YoloOnnxDetector(missing)
    text = str(err.value)
    assert str(missing) in text and "yolo export model=yolov8n.pt format=onnx" in text
    assert "detector/yolov8n.onnx" in text.split(str(missing))[-1]


def test_yolo_decoding_latency(yolo_model, tmp_path):
    """Five people with 40 overlapping candidates each plus 8200 background anchors."""
    rng = np.random.default_rng(3)
    specs = [(cx + rng.normal(0, 4), cy + rng.normal(0, 4), 60 + rng.normal(0, 3), 160 + rng.normal(0, 3),
              0, rng.uniform(0.3, 0.9)) for cx, cy in rng.uniform(100, 540, (5, 2)) for _ in range(40)]
    det = YoloOnnxDetector(write_yolo_graph(tmp_path / "busy.onnx", anchors(specs)), score_threshold=0.25)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    det.detect(image)
    runs = []
    for _ in range(20):
        t = time.perf_counter()
        out = det.detect(image)
        runs.append((time.perf_counter() - t, det.last_timings))
    total = np.median([r[0] for r in runs]) * 1e3
    stages = {k: np.median([r[1][k] for r in runs]) * 1e3 for k in runs[0][1]}
    print(f"\nYOLO stub 640x480 → 640: total {total:.2f} ms; "
          + ", ".join(f"{k} {v:.2f} ms" for k, v in stages.items()) + f"; {len(out)} people")
    assert 1 <= len(out) <= 5 and stages["postprocess"] < 50


# ---------------------------------------------------------------------------------- HOG
# skimage's "camera" photograph: a man behind a tripod, cut by the left and bottom edges.
CAMERAMAN_BOX = (0, 60, 330, 512)


def test_hog_finds_the_cameraman():
    # Why "camera" and not "astronaut": the astronaut is an upper-body portrait; the HOG SVM was
    # trained on full standing bodies and fires only on the helmet there (IoU with her < 0.1).
    # The cameraman is cut at the knees and by the left edge, hence border=0.5 (replicated
    # edges let the 64×128 window extend past the frame) and a small working height.
    skimage_data = pytest.importorskip("skimage.data")
    image = np.ascontiguousarray(np.repeat(skimage_data.camera()[:, :, None], 3, axis=2))
    det = HogPeopleDetector(work_height=128, border=0.5, min_box_height=0, score_threshold=0.5)
    out = det.detect(image)
    assert len(out) >= 1
    ious = [_iou(b, CAMERAMAN_BOX) for b in out.boxes]
    best = int(np.argmax(ious))
    print(f"\nHOG cameraman: boxes {out.boxes.round().tolist()} scores {out.scores.round(2).tolist()} "
          f"IoU {np.round(ious, 2).tolist()}")
    assert ious[best] > 0.6 and out.scores[best] > 0.5
    # Without edge padding the truncated man is missed: the option matters.
    assert len(HogPeopleDetector(work_height=128, border=0.0, min_box_height=0).detect(image)) == 0


def test_hog_latency_640x480():
    skimage_data = pytest.importorskip("skimage.data")
    image = cv2.resize(skimage_data.astronaut(), (640, 480))
    for label, det in (("native", HogPeopleDetector()),
                       ("border 0.5 @ 240 px", HogPeopleDetector(work_height=240, border=0.5))):
        det.detect(image)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            det.detect(image)
            times.append(time.perf_counter() - t)
        print(f"\nHOG 640x480 {label}: {np.median(times) * 1e3:.0f} ms")
        assert np.median(times) < 5.0


def test_hog_upscales_small_images():
    det = HogPeopleDetector(min_height=400)
    assert len(det.detect(np.full((100, 80, 3), 128, np.uint8))) == 0      # no crash, nothing found
    np.testing.assert_allclose(margin_to_score([-1.0, 0.0, 0.5 * np.log(2), 10.0]), [0, 0, 0.5, 1], atol=1e-4)


# ------------------------------------------------------------------------- post-filter
def test_filter_clips_drops_small_and_ranks():
    dets = Detections([[-20, -10, 100, 200],      # clipped to (0,0,100,200)
                       [50, 50, 70, 80],          # 30 px tall: dropped
                       [300, 100, 400, 300],      # score tie with the next, smaller
                       [200, 100, 420, 330],      # partly outside: clipped to x 400 / y 300
                       [500, 500, 600, 600],      # entirely outside the 400×300 image
                       [10, 10, np.nan, 90]],     # invalid
                      [0.6, 0.99, 0.8, 0.8, 0.9, 0.9])
    out = filter_detections(dets, (400, 300), min_box_height=48, max_people=2)
    np.testing.assert_allclose(out.boxes, [[200, 100, 400, 300], [300, 100, 400, 300]])
    np.testing.assert_allclose(out.scores, [0.8, 0.8])
    all_ = filter_detections(dets, (400, 300), min_box_height=48, max_people=None)
    np.testing.assert_allclose(all_.boxes[-1], [0, 0, 100, 200])
    assert len(filter_detections(Detections(), (10, 10), 0, 3)) == 0


# --------------------------------------------------------------------- Detection2DArray
def _det_new(cx, cy, w, h, *hyps, theta=0.0):
    return NS(bbox=NS(center=NS(position=NS(x=cx, y=cy), theta=theta), size_x=w, size_y=h),
              results=[NS(hypothesis=NS(class_id=c, score=s), pose=None) for c, s in hyps])


def _det_old(cx, cy, w, h, *hyps):
    return NS(bbox=NS(center=NS(x=cx, y=cy, theta=0.0), size_x=w, size_y=h),
              results=[NS(id=c, score=s) for c, s in hyps])


def test_detection2d_array_conversion_both_layouts():
    msg = NS(header=None, detections=[
        _det_new(100, 200, 50, 100, ("person", 0.9)),
        _det_new(300, 200, 60, 120, ("car", 0.95), ("Person", 0.4)),     # best person hypothesis
        _det_new(500, 200, 60, 120, ("dog", 0.99)),                       # not a person
        _det_old(700, 150, 40, 80, ("0", 0.7)),                           # COCO index as string
        _det_new(50, 50, 20, 100, ("person", 0.3), theta=np.pi / 2),      # rotated 90°
    ])
    out = boxes_from_detection2d_array(msg, image_size=(1000, 400))
    np.testing.assert_allclose(out.scores, [0.9, 0.7, 0.4, 0.3], atol=1e-6)
    np.testing.assert_allclose(out.boxes, [[75, 150, 125, 250], [680, 110, 720, 190],
                                           [270, 140, 330, 260], [0, 40, 100, 60]], atol=1e-4)
    filtered = boxes_from_detection2d_array(msg, score_threshold=0.5, min_box_height=90)
    np.testing.assert_allclose(filtered.scores, [0.9], atol=1e-6)
    custom = boxes_from_detection2d_array(msg, person_classes=["dog"])
    np.testing.assert_allclose(custom.boxes, [[470, 140, 530, 260]])
    unlabelled = NS(detections=[NS(bbox=NS(center=NS(x=10, y=10), size_x=4, size_y=6), results=[])])
    assert len(boxes_from_detection2d_array(unlabelled)) == 0
    assert len(boxes_from_detection2d_array(unlabelled, accept_unlabelled=True)) == 1


# ------------------------------------------------------------------ fixed and factory
def test_fixed_region_detector():
    image = np.zeros((480, 640, 3), np.uint8)
    full = FixedRegionDetector().detect(image)
    np.testing.assert_allclose(full.boxes, [[0, 0, 640, 480]])
    np.testing.assert_allclose(full.scores, [1])
    half = FixedRegionDetector((0.25, 0.0, 0.75, 1.0), normalized=True).detect(image)
    np.testing.assert_allclose(half.boxes, [[160, 0, 480, 480]])
    clipped = FixedRegionDetector((600, -20, 700, 300), score=0.7).detect(image)
    np.testing.assert_allclose(clipped.boxes, [[600, 0, 640, 300]])
    assert len(FixedRegionDetector((0, 0, 10, 10), min_box_height=48).detect(image)) == 0
    with pytest.raises(ValueError):
        FixedRegionDetector((10, 10, 5, 20))
    with pytest.raises(ValueError, match="uint8 RGB"):
        FixedRegionDetector().detect(np.zeros((4, 4), np.float32))


def test_make_detector(yolo_model):
    shared = dict(score_threshold=0.4, nms_iou=0.5, max_people=3, min_box_height=10.0, model_path=None)
    hog = make_detector("hog", **shared)
    assert isinstance(hog, HogPeopleDetector) and hog.score_threshold == 0.4 and hog.max_people == 3
    full = make_detector("full_frame", **shared)
    assert isinstance(full, FixedRegionDetector) and full.box is None and full.min_box_height == 10.0
    fixed = make_detector("fixed", box=(1, 2, 30, 40))
    np.testing.assert_allclose(fixed.box, [1, 2, 30, 40])
    yolo = make_detector("YOLO", **{**shared, "model_path": str(yolo_model)})
    assert isinstance(yolo, YoloOnnxDetector) and yolo.nms_iou == 0.5
    with pytest.raises(ValueError, match="unknown detector kind"):
        make_detector("ssd")
    with pytest.raises(ValueError, match="needs box"):
        make_detector("fixed")
    with pytest.raises(ValueError, match="no parameter 'win_size'"):
        make_detector("hog", win_size=3)
    with pytest.raises(ValueError, match="model_path is set"):
        make_detector("hog", model_path="x.onnx")


def test_yolo_model_file_follows_model_dir(tmp_path):
    """detector.kind yolo without detector.model_path looks in model.dir like the other model
    files, and the error names that path."""
    from pare_ros.model_files import MissingModelFileError
    from pare_ros.ros.pipeline_factory import make_detector

    class Node:
        values = {"detector.score_threshold": 0.1, "detector.nms_iou": 0.45, "detector.max_people": 8,
                  "detector.min_box_height": 48.0, "detector.model_path": "", "detector.kind": "yolo",
                  "model.dir": str(tmp_path)}

        def p(self, name):
            return self.values[name]

    with pytest.raises(MissingModelFileError, match=str(tmp_path / "detector" / "yolov8n.onnx")):
        make_detector(Node())
