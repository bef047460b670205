"""Synthetic HumanData generator (pare_training.synthetic_data)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pare_ros.body_model import BodyModel
from pare_ros.body_model.synthetic import write_synthetic_model_dir
from pare_ros.geometry import axis_angle_to_rotmat
from pare_training.humandata import JOINT49_FROM_HUMANDATA, HumanDataset, load_humandata
from pare_training.part_labels import rasterize_faces
from pare_training.synthetic_data import generate
from pare_training.train import PartLabelDataset


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    write_synthetic_model_dir(d)
    return BodyModel.from_dir(d)


def test_annotations_images_and_reader_agree(body, tmp_path):
    path = generate(tmp_path, 4, body_model=body, image_size=(200, 240), seed=1, occluders=False)
    data = load_humandata(path, trust_pickle=True)
    assert len(data["image_path"]) == 4 and data["misc"]["camera"] == "pinhole"
    smpl, f = data["smpl"], data["misc"]["focal_length"]
    aa = torch.from_numpy(np.concatenate([smpl["global_orient"][:, None], smpl["body_pose"]], 1))
    with torch.no_grad():
        out = body(axis_angle_to_rotmat(aa), torch.from_numpy(smpl["betas"]))
    idx = np.array(JOINT49_FROM_HUMANDATA)
    for i in range(4):
        j = out.joints49[i].numpy() + smpl["transl"][i]
        uv = f[i] * j[:, :2] / j[:, 2:] + [100, 120]
        kp = data["keypoints2d"][i, idx]
        assert np.allclose(kp[:, :2], uv, atol=1e-2)
        assert np.allclose(data["keypoints3d"][i, idx, :3], j, atol=1e-4)
        v = out.vertices[i].numpy() + smpl["transl"][i]
        ids = rasterize_faces(v, body.faces, f[i], 100, 120, (240, 200))
        mask = ids >= 0
        assert 0.01 < mask.mean() < 0.7
        x, y, w, h, _ = data["bbox_xywh"][i]
        ys, xs = np.nonzero(mask)
        assert (x, y, w, h) == (xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1)
        img = cv2.imread(str(tmp_path / data["image_path"][i]))[..., ::-1].astype(np.float64)
        # shaded body = intensity × one colour: constant chromaticity inside the silhouette
        inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3))) > 0
        chroma = img / (img.sum(-1, keepdims=True) + 1e-9)
        assert chroma[inner].std(0).max() < 0.02
        assert chroma[~mask].std(0).max() > 0.02      # the background is not that colour
    # the reader and the part-label renderer place the body where the image shows it
    ds = PartLabelDataset(HumanDataset(path, tmp_path, trust_pickle=True), body, label_size=224)
    item = ds[0]
    assert float(item["has_smpl"]) == 1 and float(item["has_part_labels"]) == 1
    crop = (item["img"].numpy().transpose(1, 2, 0))
    lab = item["part_labels"].numpy() > 0
    ch = crop / (np.abs(crop).sum(-1, keepdims=True) + 1e-9)
    assert lab.mean() > 0.01 and ch[lab].std(0).max() < ch[~lab].std(0).max()


def test_occluders_seed_and_fallback_model(body, tmp_path, monkeypatch):
    a = generate(tmp_path / "a", 3, body_model=body, seed=5, image_size=(128, 128))
    b = generate(tmp_path / "b", 3, body_model=body, seed=5, image_size=(128, 128))
    da, db = load_humandata(a, trust_pickle=True), load_humandata(b, trust_pickle=True)
    assert np.array_equal(da["keypoints2d"], db["keypoints2d"])
    ia = cv2.imread(str(tmp_path / "a" / da["image_path"][0]))
    assert np.array_equal(ia, cv2.imread(str(tmp_path / "b" / db["image_path"][0])))
    # no real model anywhere → the synthetic stand-in is written next to the data
    monkeypatch.setenv("PARE_ROS_MODEL_DIR", str(tmp_path / "nothing"))
    c = generate(tmp_path / "c", 1, model_dir=tmp_path / "nothing", image_size=(96, 96))
    assert c.is_file() and (tmp_path / "c" / "synthetic_model" / "smpl").is_dir()
