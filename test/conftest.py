"""Shared pytest fixtures: the reference parity fixture, checkpoint writers and the synthetic SMPL model."""
from __future__ import annotations

import os
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from pare_ros.body_model import BodyModel
from pare_ros.body_model.synthetic import write_synthetic_model_dir
from pare_ros.ros.dds_profile import use_large_image_profile

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(os.environ.get(
    "PARE_ROS_FIXTURES", REPO.parent / "shared" / "fixtures")) / "pare_hrnet_w32_reference_outputs.pt"

# Before any DDS participant exists in this process or its children: with Fast DDS's 512 KiB
# default segment, a mid-sized image can make the next CameraInfo miss shared memory and
# arrive only with the writer's next heartbeat, seconds later (config/fastdds_large_images.xml).
use_large_image_profile()


@pytest.fixture(scope="session")
def reference():
    """The reference fixture: weights in original naming (float16 → float32), input, outputs."""
    if not FIXTURE.is_file():
        pytest.skip(f"parity fixture not found at {FIXTURE} (set PARE_ROS_FIXTURES)")
    data = torch.load(FIXTURE, map_location="cpu", weights_only=True)
    data["state_dict"] = OrderedDict(
        (k, v.float() if v.is_floating_point() else v) for k, v in data["state_dict"].items())
    return data


def fake_class(module_name: str, class_name: str, base=object, **attrs):
    """A class that pickles under ``module_name.class_name`` (its module is registered in
    sys.modules only while the caller needs it), standing in for third-party classes
    (yacs, PyTorch Lightning, mmcv) that the official checkpoints reference."""
    cls = type(class_name, (base,), dict(attrs))
    cls.__module__ = module_name
    cls.__qualname__ = class_name
    return cls


class registered_modules:
    """Context manager putting fake modules holding the given classes into sys.modules."""

    def __init__(self, *classes):
        self.classes = classes
        self.added = []

    def __enter__(self):
        for cls in self.classes:
            parts = cls.__module__.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in sys.modules:
                    sys.modules[name] = types.ModuleType(name)
                    self.added.append(name)
            setattr(sys.modules[cls.__module__], cls.__name__, cls)
        return self

    def __exit__(self, *exc):
        for name in reversed(self.added):
            sys.modules.pop(name, None)


def _cfg_node_class():
    return fake_class("yacs.config", "CfgNode", dict)


def write_lightning_ckpt(state_dict, path: Path, extra_state=None, hparams=None) -> Path:
    """Write weights the way PARE's PyTorch-Lightning 1.1.8 trainer saved its checkpoints."""
    CfgNode = _cfg_node_class()
    ModelCheckpoint = fake_class("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
    AttributeDict = fake_class("pytorch_lightning.utilities.parsing", "AttributeDict", dict)

    def cfg(d):
        node = CfgNode({k: cfg(v) if isinstance(v, dict) else v for k, v in d.items()})
        node.__dict__.update({"__immutable__": True, "__deleted__": {}, "__new_allowed__": False})
        return node

    hp = hparams if hparams is not None else {
        "PARE": {"BACKBONE": "hrnet_w32-conv", "NUM_JOINTS": 24, "NUM_DECONV_LAYERS": 2,
                 "NUM_DECONV_FILTERS": 128, "NUM_FEATURES_SMPL": 64, "SOFTMAX_TEMP": 1.0,
                 "USE_KEYPOINT_ATTENTION": True, "KEYPOINT_ATTENTION_ACT": "softmax"},
        "DATASET": {"USE_HEATMAPS": "part_segm", "IMG_RES": 224, "FOCAL_LENGTH": 5000.0},
        "TRAINING": {"PRETRAINED_LIT": None},
    }
    sd = OrderedDict(("model." + k, v) for k, v in state_dict.items())
    # SMPL layer buffers and trainer helpers that the real checkpoints carry (shapes shrunk).
    sd["model.smpl.smpl.v_template"] = torch.zeros(6890, 3)
    sd["model.smpl.smpl.J_regressor_extra"] = torch.zeros(9, 6890)
    sd["smpl.betas"] = torch.zeros(64, 10)
    sd["smpl_native.faces_tensor"] = torch.zeros(13776, 3, dtype=torch.int64)
    sd.update(extra_state or {})
    with registered_modules(CfgNode, ModelCheckpoint, AttributeDict):
        ckpt = {
            "epoch": 41, "global_step": 123456, "pytorch-lightning_version": "1.1.8",
            "callbacks": {ModelCheckpoint: {"monitor": "val_loss", "best_model_score": torch.tensor(0.5),
                                            "best_model_path": "/tmp/x.ckpt"}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 5e-5, "params": [0, 1]}]}],
            "lr_schedulers": [],
            "state_dict": sd,
            "hyper_parameters": AttributeDict(cfg(hp)),
        }
        torch.save(ckpt, path)
    return path


def write_mmhuman3d_pth(state_dict, path: Path) -> Path:
    """Write weights the way mmcv's ``save_checkpoint`` stores mmhuman3d's PARE."""
    sd = OrderedDict(state_dict)
    sd["body_model_train.v_template"] = torch.zeros(6890, 3)
    sd["body_model_test.joints_regressor"] = torch.zeros(17, 6890)
    ckpt = {
        "meta": {"mmcv_version": "1.5.0", "time": "Wed Apr 27 11:37:17 2022", "epoch": 50,
                 "iter": 100000, "config": "model = dict(type='ImageBodyModelEstimator', ...)"},
        "state_dict": sd,
        "optimizer": {"backbone": {"state": {}, "param_groups": []}},
    }
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def body_model(tmp_path_factory):
    """The neutral synthetic SMPL model (the real one is licensed and absent in CI), one per module."""
    root = tmp_path_factory.mktemp("synthetic_smpl")
    write_synthetic_model_dir(root, genders=("neutral",))
    return BodyModel.from_dir(root, gender="neutral")
