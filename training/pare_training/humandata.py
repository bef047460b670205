"""Reader for mmhuman3d HumanData ``.npz`` files and torch datasets built on them.

Format (pare-model-spec.md §14): ``image_path`` (N,) relative paths; ``bbox_xywh`` (N,5) x_min,
y_min, w, h, score; ``keypoints2d*`` (N,190,3) x, y, conf in image pixels; ``keypoints3d*``
(N,190,4) x, y, z, conf in metres (OpenCV camera frame); ``*_mask`` (190,); and the dict-valued
keys ``smpl`` {body_pose (N,23,3), global_orient (N,3), betas (N,10), transl (N,3)} axis-angle,
``meta`` and ``misc``, stored as 0-d object arrays (pickled).

Keypoints are converted from the 190-joint HUMAN_DATA convention to PARE's 49 joints by name
(the same name table as mmhuman3d's ``smpl_49`` convention), see :data:`JOINT49_HUMANDATA_NAMES`.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from pare_ros.constants import JOINT49_NAMES

_NAMES_FILE = Path(__file__).parent / "data" / "human_data_190_joint_names.txt"


def _read_names(path: Path = _NAMES_FILE) -> tuple:
    # The file starts with two comment lines; names follow one a line in index order.
    names = [ln.strip() for ln in path.read_text().splitlines()[2:] if ln.strip()]
    if len(names) != 190 or len(set(names)) != 190:
        raise ValueError(f"{path}: expected 190 unique joint names, found {len(names)}")
    return tuple(names)


#: The 190 HUMAN_DATA keypoint names in index order.
HUMAN_DATA_NAMES = _read_names()

#: HumanData name of each of PARE's 49 joints (mmhuman3d ``SMPL_49_KEYPOINTS``). The GT hips and
#: neck/head top are the LSP-style ``*_extra``/``headtop`` joints, not the SMPL skeleton joints.
JOINT49_HUMANDATA_NAMES = {
    "OP Nose": "nose_openpose", "OP Neck": "neck_openpose",
    "OP RShoulder": "right_shoulder_openpose", "OP RElbow": "right_elbow_openpose",
    "OP RWrist": "right_wrist_openpose", "OP LShoulder": "left_shoulder_openpose",
    "OP LElbow": "left_elbow_openpose", "OP LWrist": "left_wrist_openpose",
    "OP MidHip": "pelvis_openpose", "OP RHip": "right_hip_openpose",
    "OP RKnee": "right_knee_openpose", "OP RAnkle": "right_ankle_openpose",
    "OP LHip": "left_hip_openpose", "OP LKnee": "left_knee_openpose",
    "OP LAnkle": "left_ankle_openpose", "OP REye": "right_eye_openpose",
    "OP LEye": "left_eye_openpose", "OP REar": "right_ear_openpose", "OP LEar": "left_ear_openpose",
    "OP LBigToe": "left_bigtoe_openpose", "OP LSmallToe": "left_smalltoe_openpose",
    "OP LHeel": "left_heel_openpose", "OP RBigToe": "right_bigtoe_openpose",
    "OP RSmallToe": "right_smalltoe_openpose", "OP RHeel": "right_heel_openpose",
    "Right Ankle": "right_ankle", "Right Knee": "right_knee", "Right Hip": "right_hip_extra",
    "Left Hip": "left_hip_extra", "Left Knee": "left_knee", "Left Ankle": "left_ankle",
    "Right Wrist": "right_wrist", "Right Elbow": "right_elbow", "Right Shoulder": "right_shoulder",
    "Left Shoulder": "left_shoulder", "Left Elbow": "left_elbow", "Left Wrist": "left_wrist",
    "Neck (LSP)": "neck_extra", "Top of Head (LSP)": "headtop", "Pelvis (MPII)": "pelvis_extra",
    "Thorax (MPII)": "thorax_extra", "Spine (H36M)": "spine_extra", "Jaw (H36M)": "jaw_extra",
    "Head (H36M)": "head_extra", "Nose": "nose", "Left Eye": "left_eye", "Right Eye": "right_eye",
    "Left Ear": "left_ear", "Right Ear": "right_ear",
}

#: Index into the 190 HumanData joints for each of the 49 joints; -1 where there is none.
JOINT49_FROM_HUMANDATA = tuple(
    HUMAN_DATA_NAMES.index(JOINT49_HUMANDATA_NAMES[n])
    if JOINT49_HUMANDATA_NAMES.get(n) in HUMAN_DATA_NAMES else -1 for n in JOINT49_NAMES)
#: The 49-joint names without a HumanData counterpart (always confidence 0). Empty with the
#: table above: every PARE joint has a HUMAN_DATA name.
JOINT49_MISSING = tuple(n for n, i in zip(JOINT49_NAMES, JOINT49_FROM_HUMANDATA) if i < 0)

REQUIRED_KEYS = ("image_path", "bbox_xywh")
PICKLED_KEYS = ("smpl", "meta", "misc")


class HumanDataError(ValueError):
    """A HumanData file is malformed, lacks a key, or needs pickle without ``trust_pickle``."""


def convert_keypoints(kps: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """HUMAN_DATA keypoints → PARE's 49 joints.

    Args:
        kps: [N,190,C] with the confidence last (C=3: x, y, conf; C=4: x, y, z, conf).
        mask: optional [190] 0/1 availability mask (``keypoints2d_mask``); multiplies the conf.
    Returns:
        float32 [N,49,C]; joints without a counterpart (or masked) are all zero, conf 0.
    """
    kps = np.asarray(kps, dtype=np.float32)
    if kps.ndim != 3 or kps.shape[1] != 190:
        raise HumanDataError(f"keypoints must be [N,190,C], got {kps.shape}")
    idx = np.array(JOINT49_FROM_HUMANDATA)
    out = kps[:, np.maximum(idx, 0)].copy()
    valid = (idx >= 0).astype(np.float32)
    if mask is not None:
        valid = valid * np.asarray(mask, dtype=np.float32).reshape(190)[np.maximum(idx, 0)]
    out[:, :, -1] *= valid
    out[:, valid == 0] = 0.0
    return out


def load_humandata(path: str | Path, trust_pickle: bool = False) -> Dict[str, Any]:
    """Read a HumanData ``.npz`` into a dict of arrays (dict-valued keys as dicts).

    Plain arrays are read with ``allow_pickle=False``. The dict-valued keys (``smpl``, ``meta``,
    ``misc``) are 0-d object arrays that only unpickling can read, and **unpickling executes
    code embedded in the file**: they are refused (``HumanDataError``) unless
    ``trust_pickle=True``, which you should pass only for files from a trusted source.

    Raises:
        FileNotFoundError: no such file.
        HumanDataError: not an npz, a required key (``image_path``, ``bbox_xywh``) is missing,
            or pickled keys are present and ``trust_pickle`` is False.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HumanData file not found: {path}")
    out: Dict[str, Any] = {}
    pickled: List[str] = []
    try:
        with np.load(path, allow_pickle=False) as f:
            for key in f.files:
                try:
                    out[key] = f[key]
                except ValueError:          # "Object arrays cannot be loaded when allow_pickle=False"
                    pickled.append(key)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise HumanDataError(f"{path}: not a readable .npz file ({exc})") from exc
    if pickled and not trust_pickle:
        raise HumanDataError(
            f"{path}: keys {pickled} are pickled objects; reading them executes code from the "
            "file. Pass trust_pickle=True only if the file comes from a trusted source.")
    if pickled:
        with np.load(path, allow_pickle=True) as f:
            for key in pickled:
                value = f[key]
                out[key] = value.item() if value.ndim == 0 else value
    missing = [k for k in REQUIRED_KEYS if k not in out]
    if missing:
        raise HumanDataError(f"{path}: missing required key(s) {missing}; has {sorted(out)}")
    n = len(out["image_path"])
    bbox = np.asarray(out["bbox_xywh"])
    if bbox.ndim != 2 or bbox.shape[0] != n or bbox.shape[1] < 4:
        raise HumanDataError(f"{path}: bbox_xywh must be [N,4|5] with N={n}, got {bbox.shape}")
    return out


def _get_smpl(data: Dict[str, Any], n: int, source: str) -> Optional[Dict[str, np.ndarray]]:
    smpl = data.get("smpl")
    if smpl is None:
        return None
    if not isinstance(smpl, dict):
        raise HumanDataError(f"{source}: 'smpl' must be a dict, got {type(smpl).__name__}")
    for key, shape in (("body_pose", (n, 23, 3)), ("global_orient", (n, 3)), ("betas", (n, 10))):
        if key not in smpl:
            raise HumanDataError(f"{source}: smpl dict lacks {key!r}; has {sorted(smpl)}")
        if tuple(np.shape(smpl[key])) != shape:
            raise HumanDataError(f"{source}: smpl[{key!r}] must be {shape}, got {np.shape(smpl[key])}")
    return smpl


class HumanDataset(Dataset):
    """torch Dataset over one HumanData file: 224 crops + PARE training targets.

    Each item is a dict of torch tensors:
        ``img``         [3,224,224] float32, ImageNet-normalised RGB crop,
        ``keypoints``   [49,3] 2D joints in [-1,1] crop coordinates + conf,
        ``pose_3d``     [49,4] 3D joints (metres, camera frame) + conf (0 when absent),
        ``pose``        [72] SMPL axis-angle (global orient first), ``pose_rotmat`` [24,3,3],
        ``betas``       [10], ``has_smpl`` scalar 0/1, ``has_pose_3d`` scalar 0/1,
        ``index`` int, ``image_path`` str.

    Args:
        data: a path to the ``.npz`` or the dict from :func:`load_humandata`.
        image_root: directory the ``image_path`` entries are relative to.
        box_scale: crop side = box_scale · max(w, h) (1.0 PARE demo, 1.25 mmhuman3d).
        keypoints2d_key / keypoints3d_key: which keypoint arrays to use.
        augment: optional object with ``sample(rng) -> params`` (attributes ``scale``, ``rot``
            in degrees) and ``apply(sample, params, rng) -> sample`` (see ``pare_training.augment``).
        trust_pickle: forwarded to :func:`load_humandata` (needed for the ``smpl`` key).
        seed: base seed of the per-item augmentation random generator.
    """

    def __init__(self, data: str | Path | Dict[str, Any], image_root: str | Path,
                 box_scale: float = 1.25, keypoints2d_key: str = "keypoints2d",
                 keypoints3d_key: str = "keypoints3d", augment: Any = None,
                 trust_pickle: bool = False, seed: int = 0) -> None:
        source = str(data) if not isinstance(data, dict) else "<HumanData dict>"
        self.data = data if isinstance(data, dict) else load_humandata(data, trust_pickle)
        self.image_root = Path(image_root)
        self.box_scale = box_scale
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        n = len(self.data["image_path"])
        self.image_paths = [str(p) for p in self.data["image_path"]]
        self.bbox = np.asarray(self.data["bbox_xywh"], dtype=np.float64)[:, :4]
        self.kp2d = self._keypoints(keypoints2d_key, n, 3)
        self.kp3d = self._keypoints(keypoints3d_key, n, 4)
        self.smpl = _get_smpl(self.data, n, source)

    def _keypoints(self, key: str, n: int, channels: int) -> Optional[np.ndarray]:
        if key not in self.data:
            return None
        kps = np.asarray(self.data[key])
        if kps.shape != (n, 190, channels):
            raise HumanDataError(f"{key} must be [{n},190,{channels}], got {kps.shape}")
        return convert_keypoints(kps, self.data.get(f"{key}_mask"))

    def __len__(self) -> int:
        return len(self.image_paths)

    def load_image(self, i: int) -> np.ndarray:
        """uint8 RGB [H,W,3] of item ``i``; FileNotFoundError naming the path if unreadable."""
        import cv2
        path = self.image_root / self.image_paths[i]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if image is None:
            raise FileNotFoundError(f"image of HumanData item {i} not found or unreadable: {path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        from pare_ros.geometry import axis_angle_to_rotmat
        from pare_ros.preprocessing import CROP_SIZE, box_to_crop, normalize_crops

        rng = np.random.default_rng((self.seed, self.epoch, i))
        params = self.augment.sample(rng) if self.augment is not None else None
        scale = getattr(params, "scale", 1.0)
        rot = getattr(params, "rot", 0.0)
        x, y, w, h = self.bbox[i]
        crop = box_to_crop(np.array([x, y, x + w, y + h]), self.box_scale * scale)
        affine = crop_affine(crop.cx, crop.cy, crop.side, rot, CROP_SIZE)
        image = warp_crop(self.load_image(i), affine, CROP_SIZE)

        kp2d = (self.kp2d[i].copy() if self.kp2d is not None
                else np.zeros((49, 3), np.float32))
        kp2d[:, :2] = (kp2d[:, :2] @ affine[:, :2].T + affine[:, 2]) / (CROP_SIZE / 2.0) - 1.0
        kp3d = (self.kp3d[i].copy() if self.kp3d is not None
                else np.zeros((49, 4), np.float32))
        if self.smpl is not None:
            pose = np.concatenate([self.smpl["global_orient"][i].reshape(3),
                                   self.smpl["body_pose"][i].reshape(69)]).astype(np.float32)
            betas = np.asarray(self.smpl["betas"][i], np.float32).reshape(10)
            has_smpl = 1.0
        else:
            pose, betas, has_smpl = np.zeros(72, np.float32), np.zeros(10, np.float32), 0.0
        if rot:
            # In-plane rotation of the crop = rotation of the camera-frame body about the
            # optical (z) axis: rotate the 3D joints and the global orientation alike.
            rz = rot_z(rot)
            kp3d[:, :3] = kp3d[:, :3] @ rz.T
            pose[:3] = rotate_axis_angle(rz, pose[:3])
        sample = {"img": image, "keypoints": kp2d.astype(np.float32),
                  "pose_3d": kp3d.astype(np.float32), "pose": pose, "betas": betas}
        if self.augment is not None:
            sample = self.augment.apply(sample, params, rng)
        pose_t = torch.from_numpy(np.ascontiguousarray(sample["pose"], dtype=np.float32))
        return {
            "img": normalize_crops(sample["img"][None])[0],
            "keypoints": torch.from_numpy(np.ascontiguousarray(sample["keypoints"])),
            "pose_3d": torch.from_numpy(np.ascontiguousarray(sample["pose_3d"])),
            "pose": pose_t,
            "pose_rotmat": axis_angle_to_rotmat(pose_t.reshape(24, 3)),
            "betas": torch.from_numpy(np.ascontiguousarray(sample["betas"])),
            "has_smpl": torch.tensor(has_smpl),
            "has_pose_3d": torch.tensor(float(self.kp3d is not None and kp3d[:, 3].any())),
            "index": i, "image_path": self.image_paths[i],
        }


def crop_affine(cx: float, cy: float, side: float, rot_deg: float = 0.0,
                size: int = 224) -> np.ndarray:
    """2×3 map source pixels → crop pixels: square (cx, cy, side) to size², then a rotation by
    ``rot_deg`` (counter-clockwise on screen) about the crop centre."""
    k = size / side
    c, s = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    # Image y points down, so a counter-clockwise on-screen rotation is [[c, s], [-s, c]].
    r = np.array([[c, s], [-s, c]]) * k
    t = np.array([size / 2, size / 2]) - r @ np.array([cx, cy])
    return np.concatenate([r, t[:, None]], axis=1)


def warp_crop(image_rgb: np.ndarray, affine: np.ndarray, size: int = 224) -> np.ndarray:
    """uint8 [H,W,3] → uint8 [size,size,3] (bilinear, zero border, as pare_ros.preprocessing)."""
    import cv2
    return cv2.warpAffine(image_rgb, affine, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def rot_z(rot_deg: float) -> np.ndarray:
    """3×3 rotation about the camera z axis matching :func:`crop_affine`'s on-screen rotation."""
    c, s = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)


def rotate_axis_angle(rot: np.ndarray, aa: np.ndarray) -> np.ndarray:
    """Axis-angle of ``rot @ R(aa)`` (both 3×3 / [3])."""
    from scipy.spatial.transform import Rotation
    return (Rotation.from_matrix(rot) * Rotation.from_rotvec(aa)).as_rotvec().astype(np.float32)


class MixedDataset(Dataset):
    """Samples from several datasets with fixed ratios (PARE's ``MixedDataset``).

    Item ``j`` is drawn from dataset ``k`` with probability ``ratios[k]`` (normalised) and a
    uniformly random index into it; the draw is fixed per ``(seed, epoch)``, call
    :meth:`set_epoch` to redraw.

    Args:
        datasets: sequence of datasets (``len`` and ``__getitem__``).
        ratios: non-negative weights, one per dataset.
        length: items per epoch (default: the longest dataset's length).
    """

    def __init__(self, datasets: Sequence[Any], ratios: Sequence[float],
                 length: Optional[int] = None, seed: int = 0) -> None:
        if len(datasets) != len(ratios) or not datasets:
            raise ValueError("need one ratio per dataset and at least one dataset")
        r = np.asarray(ratios, dtype=np.float64)
        if (r < 0).any() or r.sum() <= 0:
            raise ValueError(f"ratios must be non-negative with a positive sum, got {ratios}")
        if any(len(d) == 0 for d, w in zip(datasets, r) if w > 0):
            raise ValueError("a dataset with a positive ratio is empty")
        self.datasets = list(datasets)
        self.ratios = r / r.sum()
        self.length = int(length if length is not None else max(len(d) for d in datasets))
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Redraw which dataset and item each index maps to (also forwarded to the datasets)."""
        rng = np.random.default_rng((self.seed, epoch))
        self.which = rng.choice(len(self.datasets), size=self.length, p=self.ratios)
        self.inner = np.array([rng.integers(len(self.datasets[k])) for k in self.which],
                              dtype=np.int64)
        for d in self.datasets:
            if hasattr(d, "epoch"):
                d.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, j: int) -> Any:
        return self.datasets[self.which[j]][int(self.inner[j])]
