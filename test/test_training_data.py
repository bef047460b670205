"""pare_training.humandata and .augment: HumanData reading, the 190→49 joint map, crops and
targets, mixing; flips, colour noise, occlusion."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pare_ros.constants import JOINT49_FLIP_PERM, JOINT49_NAMES, SMPL_FLIP_PERM
from pare_training import augment as aug
from pare_training import humandata as hd

N = 3
H, W = 240, 320


def _names():
    text = (Path(__file__).resolve().parents[1] / "training" / "pare_training" / "data"
            / "human_data_190_joint_names.txt").read_text().splitlines()
    return [t.strip() for t in text[2:] if t.strip()]


def _write(tmp_path, with_smpl=True, drop=None, n=N):
    """A tiny HumanData file plus images (a bright 5×5 square at each item's knee keypoint)."""
    names = _names()
    rng = np.random.default_rng(0)
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    kp2d = np.zeros((n, 190, 3), np.float32)
    kp3d = np.zeros((n, 190, 4), np.float32)
    bbox = np.zeros((n, 5), np.float32)
    paths = []
    for i in range(n):
        x0, y0, w, h = 100 + 10 * i, 40, 80, 160
        bbox[i] = (x0, y0, w, h, 1.0)
        knee = (x0 + 20 + i, y0 + 100)
        kp2d[i, names.index("left_knee")] = (*knee, 1.0)
        kp2d[i, names.index("right_hip_extra")] = (x0 + w / 2, y0 + h / 2, 1.0)  # box centre
        kp3d[i, names.index("left_knee")] = (0.1, 0.4, 3.0, 1.0)
        img = np.zeros((H, W, 3), np.uint8)
        img[knee[1] - 2:knee[1] + 3, knee[0] - 2:knee[0] + 3] = 255
        name = f"im{i}.png"
        cv2.imwrite(str(img_dir / name), img)
        paths.append(name)
    arrays = {"image_path": np.array(paths), "bbox_xywh": bbox, "keypoints2d": kp2d,
              "keypoints2d_mask": np.ones(190, np.uint8), "keypoints3d": kp3d,
              "keypoints3d_mask": np.ones(190, np.uint8), "config": np.array("test")}
    if with_smpl:
        arrays["smpl"] = np.array({"body_pose": rng.normal(0, 0.2, (n, 23, 3)).astype(np.float32),
                                   "global_orient": rng.normal(0, 0.5, (n, 3)).astype(np.float32),
                                   "betas": rng.normal(size=(n, 10)).astype(np.float32),
                                   "transl": np.zeros((n, 3), np.float32)}, dtype=object)
        arrays["meta"] = np.array({"gender": np.array(["neutral"] * n)}, dtype=object)
    for k in drop or ():
        arrays.pop(k)
    path = tmp_path / "tiny.npz"
    np.savez(path, **arrays)
    return path, img_dir


def test_names_file_and_named_mapping():
    assert len(hd.HUMAN_DATA_NAMES) == 190 and hd.HUMAN_DATA_NAMES[0] == "pelvis"
    assert list(hd.HUMAN_DATA_NAMES) == _names()
    pairs = {"left_knee": "Left Knee", "right_ankle": "Right Ankle", "headtop": "Top of Head (LSP)",
             "right_hip_extra": "Right Hip", "left_knee_openpose": "OP LKnee", "left_eye": "Left Eye",
             "right_heel_openpose": "OP RHeel", "jaw_extra": "Jaw (H36M)"}
    for src, dst in pairs.items():
        assert hd.JOINT49_FROM_HUMANDATA[JOINT49_NAMES.index(dst)] == hd.HUMAN_DATA_NAMES.index(src)
    assert hd.JOINT49_MISSING == ()
    assert len(set(hd.JOINT49_FROM_HUMANDATA)) == 49


def test_convert_keypoints_values_mask_and_missing(monkeypatch):
    kps = np.zeros((1, 190, 3), np.float32)
    kps[0, hd.HUMAN_DATA_NAMES.index("left_knee")] = (5, 6, 0.7)
    kps[0, hd.HUMAN_DATA_NAMES.index("nose")] = (1, 2, 1.0)
    out = hd.convert_keypoints(kps)
    np.testing.assert_allclose(out[0, JOINT49_NAMES.index("Left Knee")], (5, 6, 0.7))
    np.testing.assert_allclose(out[0, JOINT49_NAMES.index("Nose")], (1, 2, 1.0))
    assert out[0, JOINT49_NAMES.index("OP Nose"), 2] == 0       # nose_openpose not set
    mask = np.ones(190)
    mask[hd.HUMAN_DATA_NAMES.index("left_knee")] = 0
    masked = hd.convert_keypoints(kps, mask)
    assert masked[0, JOINT49_NAMES.index("Left Knee")].tolist() == [0, 0, 0]
    # a joint without counterpart gets confidence 0 (and zero coordinates)
    idx = list(hd.JOINT49_FROM_HUMANDATA)
    idx[JOINT49_NAMES.index("Nose")] = -1
    monkeypatch.setattr(hd, "JOINT49_FROM_HUMANDATA", tuple(idx))
    assert hd.convert_keypoints(kps)[0, JOINT49_NAMES.index("Nose")].tolist() == [0, 0, 0]
    with pytest.raises(hd.HumanDataError):
        hd.convert_keypoints(np.zeros((1, 17, 3)))


def test_trust_pickle_flag(tmp_path):
    path, _ = _write(tmp_path, with_smpl=True)
    with pytest.raises(hd.HumanDataError, match="trust_pickle") as err:
        hd.load_humandata(path)
    assert "smpl" in str(err.value) and "meta" in str(err.value)
    data = hd.load_humandata(path, trust_pickle=True)
    assert isinstance(data["smpl"], dict) and data["smpl"]["body_pose"].shape == (N, 23, 3)
    assert str(data["config"]) == "test"


def test_plain_file_loads_without_pickle(tmp_path):
    path, _ = _write(tmp_path, with_smpl=False)
    data = hd.load_humandata(path)
    assert data["keypoints2d"].shape == (N, 190, 3) and "smpl" not in data


def test_missing_key_and_missing_file(tmp_path):
    path, _ = _write(tmp_path, with_smpl=False, drop=["bbox_xywh"])
    with pytest.raises(hd.HumanDataError, match="bbox_xywh"):
        hd.load_humandata(path)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        hd.load_humandata(tmp_path / "nope.npz")


def test_missing_image_names_path(tmp_path):
    path, img_dir = _write(tmp_path, with_smpl=False)
    (img_dir / "im1.png").unlink()
    ds = hd.HumanDataset(path, img_dir)
    ds[0]
    with pytest.raises(FileNotFoundError, match=r"images[/\\]im1\.png"):
        ds[1]


def test_dataset_targets(tmp_path):
    path, img_dir = _write(tmp_path, with_smpl=True)
    ds = hd.HumanDataset(path, img_dir, box_scale=1.0, trust_pickle=True)
    item = ds[2]
    assert item["img"].shape == (3, 224, 224) and item["img"].dtype == torch.float32
    kp = item["keypoints"]
    # the box centre maps to the crop centre (0, 0)
    np.testing.assert_allclose(kp[JOINT49_NAMES.index("Right Hip")].numpy(), (0, 0, 1), atol=1e-5)
    # the knee: box side 160 → 224 px, offset (20+2-40, 100-80) px → ×1.4 / 112
    knee = kp[JOINT49_NAMES.index("Left Knee")].numpy()
    np.testing.assert_allclose(knee, ((22 - 40) * 1.4 / 112, 20 * 1.4 / 112, 1), atol=1e-5)
    _assert_bright_at(item["img"], knee)
    assert item["pose_3d"][JOINT49_NAMES.index("Left Knee")].tolist() == pytest.approx([0.1, 0.4, 3.0, 1])
    smpl = ds.data["smpl"]
    assert item["has_smpl"] == 1
    np.testing.assert_allclose(item["pose"][:3].numpy(), smpl["global_orient"][2], atol=1e-6)
    r = item["pose_rotmat"]
    assert r.shape == (24, 3, 3)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(24, 3, 3), atol=1e-5,
                               rtol=0)
    np.testing.assert_allclose(item["betas"].numpy(), smpl["betas"][2])
    (tmp_path / "p").mkdir()
    plain_path, plain_images = _write(tmp_path / "p", with_smpl=False)
    plain = hd.HumanDataset(plain_path, plain_images)
    assert plain[0]["has_smpl"] == 0


def _assert_bright_at(img, kp_xy):
    """The crop pixel at a [-1,1] keypoint is bright (the square painted at the keypoint)."""
    px = (np.asarray(kp_xy[:2]) + 1) * 112
    x, y = int(round(px[0])), int(round(px[1]))
    assert img[:, y, x].min() > 1.5, (x, y)     # normalised 255 ≈ +2.2 in every channel
    assert img[:, 5, 5].max() < 0              # black corner


class _Rotate:
    """Minimal augment: a fixed rotation and scale, nothing else."""

    def __init__(self, rot, scale=1.0):
        self.rot, self.scale = rot, scale

    def sample(self, rng):
        return self

    def apply(self, sample, params, rng):
        return sample


@pytest.mark.parametrize("rot", [30.0, -75.0])
def test_rotation_keeps_image_and_targets_consistent(tmp_path, rot):
    path, img_dir = _write(tmp_path, with_smpl=True)
    ds = hd.HumanDataset(path, img_dir, box_scale=1.0, trust_pickle=True,
                         augment=_Rotate(rot, 1.1))
    base = hd.HumanDataset(path, img_dir, box_scale=1.0, trust_pickle=True)[1]
    item = ds[1]
    knee = item["keypoints"][JOINT49_NAMES.index("Left Knee")].numpy()
    _assert_bright_at(item["img"], knee)
    # 2D: rotated about the crop centre and shrunk by the scale
    c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
    k0 = base["keypoints"][JOINT49_NAMES.index("Left Knee"), :2].numpy()
    np.testing.assert_allclose(knee[:2], np.array([[c, s], [-s, c]]) @ k0 / 1.1, atol=1e-5)
    # 3D joints and global orientation turn with the same rotation about the optical axis
    rz = torch.from_numpy(hd.rot_z(rot))
    j = JOINT49_NAMES.index("Left Knee")
    torch.testing.assert_close(item["pose_3d"][j, :3], rz @ base["pose_3d"][j, :3])
    torch.testing.assert_close(item["pose_rotmat"][0], rz @ base["pose_rotmat"][0], atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(item["pose_rotmat"][1:], base["pose_rotmat"][1:])


def test_mixed_dataset_ratios():
    a, b = list(range(10)), list(range(100, 150))
    mixed = hd.MixedDataset([a, b], [0.3, 0.7], length=4000, seed=1)
    items = [mixed[j] for j in range(len(mixed))]
    frac_a = np.mean([x < 100 for x in items])
    assert abs(frac_a - 0.3) < 0.03
    assert set(x for x in items if x < 100) == set(a)
    first = list(mixed.which[:50])
    mixed.set_epoch(1)
    assert list(mixed.which[:50]) != first
    with pytest.raises(ValueError):
        hd.MixedDataset([a], [0.5, 0.5])


# ------------------------------------------------------------------------------------------
# pare_training.augment
# ------------------------------------------------------------------------------------------


def _random_sample(seed=0):
    rng = np.random.default_rng(seed)
    return {"img": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "keypoints": rng.uniform(-1, 1, (49, 3)).astype(np.float32),
            "pose_3d": rng.normal(size=(49, 4)).astype(np.float32),
            "pose": rng.normal(0, 0.5, 72).astype(np.float32),
            "betas": rng.normal(size=10).astype(np.float32)}


def test_flip_twice_is_identity():
    s = _random_sample()
    ff = aug.flip_sample(aug.flip_sample(s))
    for k in s:
        np.testing.assert_allclose(ff[k], s[k], atol=1e-6, err_msg=k)
    once = aug.flip_sample(s)
    assert not np.array_equal(once["img"], s["img"])
    # left/right swapped: flipped 'Left Knee' is the mirrored original 'Right Knee'
    lk, rk = JOINT49_NAMES.index("Left Knee"), JOINT49_NAMES.index("Right Knee")
    assert once["pose_3d"][lk].tolist() == pytest.approx(
        [-s["pose_3d"][rk][0], *s["pose_3d"][rk][1:]])
    # SMPL: left hip (1) gets the right hip's (2) rotation with y, z negated
    p, q = s["pose"].reshape(24, 3), once["pose"].reshape(24, 3)
    np.testing.assert_allclose(q[1], p[2] * [1, -1, -1])
    np.testing.assert_allclose(q[0], p[0] * [1, -1, -1])


def test_flip_image_and_keypoints_agree(tmp_path):
    path, img_dir = _write(tmp_path, with_smpl=False)
    ds = hd.HumanDataset(path, img_dir, box_scale=1.0)
    s = ds[0]
    sample = {"img": ((s["img"].permute(1, 2, 0).numpy() * 0.225 + 0.45) * 255).clip(0, 255)
              .astype(np.uint8), "keypoints": s["keypoints"].numpy(),
              "pose_3d": s["pose_3d"].numpy(), "pose": s["pose"].numpy()}
    f = aug.flip_sample(sample)
    # the bright square sits at the (now right) knee: check the pixel in the flipped crop
    kp = f["keypoints"][JOINT49_NAMES.index("Right Knee")]
    x, y = np.rint((kp[:2] + 1) * 112).astype(int)
    assert f["img"][y, x].min() > 200 and kp[2] == 1


def test_flip_pose_mirrors_rotations_algebraically():
    # M R(aa) M with M = diag(-1,1,1) must equal R(x,-y,-z) for every joint.
    from pare_ros.geometry import axis_angle_to_rotmat
    s = _random_sample(3)
    m = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))
    r = axis_angle_to_rotmat(torch.from_numpy(s["pose"]).reshape(24, 3))
    rf = axis_angle_to_rotmat(torch.from_numpy(aug.flip_pose(s["pose"])).reshape(24, 3))
    torch.testing.assert_close(rf, (m @ r @ m)[list(SMPL_FLIP_PERM)], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def body_model(tmp_path_factory):
    from pare_ros.body_model import BodyModel, write_synthetic_model_dir
    d = write_synthetic_model_dir(tmp_path_factory.mktemp("model"), genders=("neutral",))
    return BodyModel.from_dir(d)


def test_flipped_pose_gives_mirrored_joints(body_model):
    """Through the synthetic body model. Its 24 skeleton joints are mirror-symmetric at β = 0
    (checked: < 1e-6 m), so those are compared tightly. Its 49 keypoints are not: the vertex
    keypoints/extra regressor of the synthetic mesh are ~1.2 cm asymmetric, and β ≠ 0 breaks
    the symmetry by ~1 mm, so joints49 get a loose bound only."""
    from pare_ros.geometry import axis_angle_to_rotmat
    rng = np.random.default_rng(4)
    pose = rng.normal(0, 0.4, (2, 72)).astype(np.float32)
    flipped = np.stack([aug.flip_pose(p) for p in pose])
    betas = torch.zeros(2, 10)
    a = body_model(axis_angle_to_rotmat(torch.from_numpy(pose).reshape(2, 24, 3)), betas)
    b = body_model(axis_angle_to_rotmat(torch.from_numpy(flipped).reshape(2, 24, 3)), betas)
    mirror = torch.tensor([-1.0, 1.0, 1.0])
    torch.testing.assert_close(b.joints, a.joints[:, list(SMPL_FLIP_PERM)] * mirror,
                               atol=1e-4, rtol=0)
    assert (b.joints - a.joints).abs().max() > 0.05      # the pose was not symmetric itself
    err49 = (b.joints49 - a.joints49[:, list(JOINT49_FLIP_PERM)] * mirror).abs().max()
    assert err49 < 0.03


def test_augmenter_parameters_and_colour_noise():
    a = aug.Augmenter(rot_prob=0.4)
    rng = np.random.default_rng(5)
    ps = [a.sample(rng) for _ in range(2000)]
    rots = np.array([p.rot for p in ps])
    scales = np.array([p.scale for p in ps])
    pns = np.array([p.pn for p in ps])
    assert np.abs(rots).max() <= 60 and abs(np.mean(rots != 0) - 0.4) < 0.05
    assert scales.min() >= 0.75 and scales.max() <= 1.25 and abs(scales.mean() - 1) < 0.02
    assert pns.min() >= 0.6 and pns.max() <= 1.4 and abs(np.mean([p.flip for p in ps]) - 0.5) < 0.05
    img = np.full((4, 4, 3), 200, np.uint8)
    np.testing.assert_array_equal(aug.channel_noise(img, (0.5, 1.0, 1.4))[0, 0], [100, 200, 255])


def test_occlusion_with_synthetic_and_given_occluders(tmp_path):
    occ = aug.make_synthetic_occluders(count=4, seed=1)
    assert all(o.dtype == np.uint8 and o.shape[2] == 4 and o[..., 3].max() == 255 for o in occ)
    img = np.zeros((224, 224, 3), np.uint8)
    out = aug.occlude_with_objects(img, occ, np.random.default_rng(0))
    assert out.shape == img.shape and (out > 0).any()
    # a fully opaque white square occluder
    white = np.full((300, 300, 4), 255, np.uint8)
    np.save(tmp_path / "occ.npy", white[None])
    loaded = aug.load_occluders(tmp_path / "occ.npy")
    out = aug.occlude_with_objects(img, loaded, np.random.default_rng(1), max_count=1)
    assert (out == 255).any() and (out == 0).any()
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = white[:10], white[:, :20]
    np.save(tmp_path / "ragged.npy", ragged, allow_pickle=True)
    with pytest.raises(ValueError, match="trust_pickle"):
        aug.load_occluders(tmp_path / "ragged.npy")
    assert len(aug.load_occluders(tmp_path / "ragged.npy", trust_pickle=True)) == 2
    # the augmenter falls back to synthetic occluders when occlusion is on without any
    a = aug.Augmenter(occlusion_prob=1.0, flip_prob=0.0, noise_factor=0.0)
    s = _random_sample()
    s["img"][:] = 0
    p = a.sample(np.random.default_rng(2))
    assert p.occlude and (a.apply(s, p, np.random.default_rng(2))["img"] > 0).any()


def test_dataset_with_augmenter_runs(tmp_path):
    path, img_dir = _write(tmp_path, with_smpl=True)
    ds = hd.HumanDataset(path, img_dir, trust_pickle=True,
                         augment=aug.Augmenter(rot_prob=1.0, occlusion_prob=0.5))
    items = [ds[i] for i in range(len(ds))]
    assert all(torch.isfinite(it["img"]).all() for it in items)
    torch.testing.assert_close(ds[1]["img"], items[1]["img"])     # deterministic per item
