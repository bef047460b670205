"""Crops and camera conversion follow the reference demo (spec §5.1, §6)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pare_ros.camera import Intrinsics
from pare_ros.preprocessing import (IMAGENET_MEAN, IMAGENET_STD, as_rgb, box_to_crop, crop_image,
                                    normalize_crops)


def _reference_demo_affine(cx, cy, side):
    """The reference demo builds its warp from three point pairs with getAffineTransform."""
    src = np.float32([[cx, cy], [cx, cy + side / 2], [cx + side / 2, cy]])
    dst = np.float32([[112, 112], [112, 224], [224, 112]])
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("box", [(10, 20, 110, 260), (300.5, 40.25, 420.0, 90.0), (-30, -30, 50, 400)])
@pytest.mark.parametrize("scale", [1.0, 1.25])
def test_crop_equals_reference_demo_warp(box, scale):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    crop = box_to_crop(np.array(box), scale)
    assert crop.side == pytest.approx(max(box[2] - box[0], box[3] - box[1]) * scale)
    ours = crop_image(image, crop)
    ref = cv2.warpAffine(image, _reference_demo_affine(crop.cx, crop.cy, crop.side), (224, 224),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    assert ours.dtype == np.uint8 and ours.shape == (224, 224, 3)
    # Same map up to float32 rounding of the 3-point solve: at most 1 grey level anywhere.
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_crop_maps_box_centre_to_pixel_112_and_back():
    crop = box_to_crop(np.array([100, 50, 300, 450]))
    m = crop.affine()
    np.testing.assert_allclose(m @ [crop.cx, crop.cy, 1], [112, 112])
    pts = np.array([[0.0, 0.0], [224, 224], [13.5, 200.25]])
    back = crop.to_image(pts)
    np.testing.assert_allclose((m[:, :2] @ back.T).T + m[:, 2], pts, atol=1e-9)


def test_truncation_fraction():
    assert box_to_crop(np.array([0, 0, 100, 100])).truncation(200, 200) == pytest.approx(0.0)
    # Centred on the image corner: three quarters outside.
    assert box_to_crop(np.array([-50, -50, 50, 50])).truncation(200, 200) == pytest.approx(0.75)


def test_normalisation_is_imagenet_rgb():
    crops = np.zeros((1, 224, 224, 3), np.uint8)
    crops[..., 0] = 255
    x = normalize_crops(crops)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    expected = (np.array([1.0, 0.0, 0.0]) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x[0, :, 5, 5].numpy(), expected, rtol=1e-6)


def test_colour_orders_and_bad_images():
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 0] = 200                                   # blue in BGR
    assert as_rgb(bgr, "bgr")[0, 0].tolist() == [0, 0, 200]
    assert as_rgb(np.full((4, 4), 7, np.uint8), "mono")[0, 0].tolist() == [7, 7, 7]
    assert as_rgb(np.zeros((4, 4, 4), np.uint8), "bgra").shape == (4, 4, 3)
    with pytest.raises(ValueError, match="needs 3 channel"):
        as_rgb(np.zeros((4, 4, 4), np.uint8), "rgb")
    with pytest.raises(ValueError, match="uint8"):
        as_rgb(np.zeros((4, 4, 3), np.float32), "rgb")
    with pytest.raises(ValueError, match="empty"):
        as_rgb(np.zeros((0, 4, 3), np.uint8), "rgb")
    with pytest.raises(ValueError, match="unsupported"):
        as_rgb(np.zeros((4, 4, 3), np.uint8), "yuv422")
    with pytest.raises(ValueError, match="degenerate"):
        box_to_crop(np.array([10, 10, 10, 10]))


def test_default_intrinsics_are_centred_60_degrees():
    k = Intrinsics.default_for(640, 480)
    assert (k.cx, k.cy) == (320, 240)
    assert 2 * np.degrees(np.arctan(320 / k.fx)) == pytest.approx(60.0)
    with pytest.raises(ValueError):
        Intrinsics(0.0, 1.0, 0.0, 0.0)
