"""``pare-ros infer``: one image → results.json, results.npz and overlay.png."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from .assets import build_estimator
from .camera import Intrinsics
from .overlay import render_overlay
from .results_io import write_results

log = logging.getLogger("pare_ros")


def load_image_rgb(spec: str) -> np.ndarray:
    """Read an image file (any format OpenCV reads) or ``skimage:<name>`` as RGB uint8."""
    if spec.startswith("skimage:"):
        import skimage.data

        name = spec.split(":", 1)[1]
        loader = getattr(skimage.data, name, None)
        if loader is None:
            raise ValueError(f"scikit-image ships no image called {name!r}")
        image = np.asarray(loader())
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        return np.ascontiguousarray(image[..., :3].astype(np.uint8))
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path} is not an image OpenCV can decode")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def parse_boxes(text: str | None, width: int, height: int) -> np.ndarray:
    if not text:
        return np.array([[0.0, 0.0, float(width), float(height)]])
    boxes = []
    for item in text.split(";"):
        values = [float(v) for v in item.replace(" ", "").split(",") if v]
        if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
            raise ValueError(f"bad box {item!r}: expected x0,y0,x1,y1 with x1>x0, y1>y0")
        boxes.append(values)
    return np.array(boxes)


def parse_intrinsics(text: str | None, width: int, height: int) -> Intrinsics:
    if not text:
        return Intrinsics.default_for(width, height)
    values = [float(v) for v in text.split(",")]
    if len(values) != 4:
        raise ValueError("--intrinsics needs fx,fy,cx,cy")
    return Intrinsics(*values)


def run_infer(args: argparse.Namespace) -> int:
    image = load_image_rgb(args.image)
    height, width = image.shape[:2]
    boxes = parse_boxes(args.boxes, width, height)
    intrinsics = parse_intrinsics(args.intrinsics, width, height)
    estimator, report = build_estimator(
        checkpoint=args.checkpoint, config=args.config, model_dir=args.model_dir,
        smpl_dir=args.smpl_dir, gender=args.gender, box_scale=args.box_scale,
        device=args.device, allow_untrained=args.allow_untrained)
    (log.warning if report.meaningless else log.info)("%s", report.banner())

    estimates = estimator.estimate(image, boxes, intrinsics, color_order="rgb")
    meta = {"image": args.image, "checkpoint": report.checkpoint, "body_model": report.smpl_dir,
            "gender": report.gender, "box_scale": args.box_scale,
            "meaningless": report.meaningless, "missing_files": report.missing}
    paths = write_results(estimates, args.out, meta=meta)
    body_model = estimator.body_model
    overlay = render_overlay(image, estimates.bodies, body_model.faces, body_model.parents, intrinsics)
    overlay_path = args.out / "overlay.png"
    cv2.imwrite(str(overlay_path), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    timings = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in estimates.timings.items())
    log.info("%d person(s); %s", len(estimates.bodies), timings)
    log.info("wrote %s, %s, %s", paths["json"], paths["npz"], overlay_path)
    if report.meaningless:
        log.warning("results are MEANINGLESS until the missing files listed above are provided")
    return 0
