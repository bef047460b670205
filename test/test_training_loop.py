"""Training loop (pare_training.train) on a tiny generated HumanData set, CPU."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pare_ros.body_model import BodyModel
from pare_ros.body_model.synthetic import write_synthetic_model_dir
from pare_ros.geometry import axis_angle_to_rotmat
from pare_ros.network import PARE, load_network
from pare_training.humandata import JOINT49_FROM_HUMANDATA, HumanDataset
from pare_training.train import PartLabelDataset, TrainConfig, load_config, main, train

F_IMG, W, H = 600.0, 320, 320


def _make_humandata(root: Path, body: BodyModel, n: int = 4) -> Path:
    """n random-pixel images + GT SMPL params and keypoints projected with a pinhole camera."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    go = np.tile([np.pi, 0.0, 0.0], (n, 1)) + rng.normal(0, 0.1, (n, 3))
    bp = rng.normal(0, 0.15, (n, 23, 3))
    betas = rng.normal(0, 0.5, (n, 10))
    transl = np.stack([rng.uniform(-0.2, 0.2, n), rng.uniform(0.1, 0.3, n), rng.uniform(4, 5, n)], 1)
    aa = torch.tensor(np.concatenate([go[:, None], bp], 1), dtype=torch.float32)
    out = body(axis_angle_to_rotmat(aa), torch.tensor(betas, dtype=torch.float32))
    j49 = out.joints49.numpy() + transl[:, None]
    verts = out.vertices.numpy() + transl[:, None]
    uv = F_IMG * j49[..., :2] / j49[..., 2:] + [W / 2, H / 2]
    vv = F_IMG * verts[..., :2] / verts[..., 2:] + [W / 2, H / 2]
    idx = np.array(JOINT49_FROM_HUMANDATA)
    kp2d, kp3d = np.zeros((n, 190, 3), np.float32), np.zeros((n, 190, 4), np.float32)
    kp2d[:, idx, :2], kp2d[:, idx, 2] = uv, 1
    kp3d[:, idx, :3], kp3d[:, idx, 3] = j49, 1
    mask = np.zeros(190, np.float32)
    mask[idx] = 1
    lo, hi = vv.min(1), vv.max(1)
    bbox = np.concatenate([lo, hi - lo, np.ones((n, 1))], 1).astype(np.float32)
    paths = []
    for i in range(n):
        cv2.imwrite(str(root / "images" / f"{i}.png"), rng.integers(0, 256, (H, W, 3), np.uint8))
        paths.append(f"images/{i}.png")
    smpl = {"global_orient": go.astype(np.float32), "body_pose": bp.astype(np.float32),
            "betas": betas.astype(np.float32), "transl": transl.astype(np.float32)}
    path = root / "tiny.npz"
    np.savez(path, image_path=np.array(paths), bbox_xywh=bbox, keypoints2d=kp2d,
             keypoints2d_mask=mask, keypoints3d=kp3d, keypoints3d_mask=mask,
             smpl=np.array(smpl, dtype=object), config=np.array("tiny"))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_synthetic_model_dir(root / "model")
    body = BodyModel.from_dir(root / "model")
    return root, body, _make_humandata(root / "data", body)


def _config(root, data, **kw):
    base = dict(datasets=[{"path": str(data), "image_root": str(data.parent), "ratio": 1.0,
                           "trust_pickle": True}],
                output_dir=str(root / "run"), model_dir=str(root / "model"), epochs=5,
                batch_size=2, samples_per_epoch=4, num_workers=0, log_every=1, image_every=2,
                label_size=112, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_part_labels_follow_the_gt_keypoints(setup):
    root, body, data = setup
    ds = PartLabelDataset(HumanDataset(data, data.parent, trust_pickle=True), body, label_size=112)
    for i in range(len(ds)):
        item = ds[i]
        assert float(item["has_part_labels"]) == 1
        lab = item["part_labels"].numpy()
        assert 0.05 < (lab > 0).mean() < 0.6
        kp = item["keypoints"][25:].numpy()
        px = np.clip(np.round((kp[:, :2] + 1) * 56).astype(int), 0, 111)
        on_body = lab[px[:, 1], px[:, 0]] > 0
        assert on_body.mean() >= 0.8       # GT joints fall on the rendered mesh
    # a sample without usable keypoints gets no labels
    ds2 = PartLabelDataset(HumanDataset(data, data.parent, trust_pickle=True,
                                        keypoints2d_key="missing"), body, label_size=112)
    assert float(ds2[0]["has_part_labels"]) == 0


def test_two_steps_checkpoint_resume_and_tensorboard(setup):
    root, body, data = setup
    cfg = _config(root, data, max_steps=2)
    result = train(cfg)
    assert result["step"] == 2
    terms = result["last_terms"]
    assert {"keypoints_2d", "keypoints_3d", "pose", "betas", "cam", "part_segm", "total"} <= set(terms)
    assert all(np.isfinite(v) for v in terms.values())
    ckpt_path = Path(root / "run" / "checkpoints" / "step_00000002.pth")
    assert result["checkpoint"] == ckpt_path and ckpt_path.is_file()
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    assert ckpt["meta"]["step"] == 2 and ckpt["meta"]["config"]["part_supervision"] is True
    assert "pare_ros_version" in ckpt["meta"] and ckpt["optimizer"]["state"]
    assert all(k.startswith(("backbone.", "head.")) for k in ckpt["state_dict"])

    net = load_network(ckpt_path)
    torch.manual_seed(cfg.seed)
    init = PARE().state_dict()
    loaded = net.state_dict()
    changed = [k for k, v in init.items() if v.is_floating_point() and not torch.equal(v, loaded[k])]
    assert len(changed) > 100 and "head.cam_mlp.weight" in changed

    # resume: continues at step 2 (no step 1 checkpoint is rewritten), Adam state at step 3
    result2 = train(dataclasses.replace(cfg, max_steps=3, checkpoint_every=1))
    assert result2["step"] == 3
    assert not (root / "run" / "checkpoints" / "step_00000001.pth").exists()
    ck3 = torch.load(root / "run" / "checkpoints" / "step_00000003.pth", weights_only=True)
    assert ck3["meta"]["step"] == 3
    assert int(next(iter(ck3["optimizer"]["state"].values()))["step"]) == 3

    events = list((root / "run" / "tb").glob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = set()
    for e in events:
        acc = EventAccumulator(str(e))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"]) | set(acc.Tags()["images"])
    assert {"loss/total", "loss/part_segm", "train/overlay", "train/segm_argmax"} <= tags


def test_stage2_without_part_term_and_yaml_cli(setup, tmp_path):
    root, body, data = setup
    import yaml
    cfg = dataclasses.asdict(_config(root, data, max_steps=1, part_supervision=False,
                                     output_dir=str(tmp_path / "s2"), augment=False))
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert load_config(path).part_supervision is False
    assert main(["--config", str(path)]) == 0
    ck = torch.load(tmp_path / "s2" / "checkpoints" / "step_00000001.pth", weights_only=True)
    assert ck["meta"]["step"] == 1 and ck["meta"]["config"]["part_supervision"] is False
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    (event,) = (tmp_path / "s2" / "tb").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(event))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert "loss/pose" in scalars and "loss/part_segm" not in scalars
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**cfg, "nonsense": 1}))
    with pytest.raises(ValueError, match="nonsense"):
        load_config(bad)
