"""Checkpoint loading is strict, safe and explains every failure."""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from pare_ros.network import CheckpointError, PARE, PareConfig, UnsupportedConfigError, load_network
from pare_ros.safe_load import CorruptFileError, UnsafeFileError
from conftest import write_lightning_ckpt, write_mmhuman3d_pth


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(0)
    return OrderedDict((k, v.clone()) for k, v in PARE().state_dict().items())


@pytest.fixture
def good_pth(weights, tmp_path):
    return write_mmhuman3d_pth(weights, tmp_path / "good.pth")


def test_good_checkpoint_loads_equal_weights(weights, good_pth):
    model = load_network(good_pth)
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_raw_state_dict_and_legacy_format(weights, tmp_path):
    path = tmp_path / "raw.pt"
    torch.save(dict(weights), path, _use_new_zipfile_serialization=False)
    model = load_network(path)
    assert model.checkpoint_info.layout == "state_dict"
    assert torch.equal(model.state_dict()["head.cam_mlp.bias"], weights["head.cam_mlp.bias"])


def test_missing_init_buffers_are_optional(weights, tmp_path):
    reduced = OrderedDict((k, v) for k, v in weights.items() if not k.startswith("head.init_"))
    load_network(write_mmhuman3d_pth(reduced, tmp_path / "no_init.pth"))


def test_truncated_checkpoint(good_pth, tmp_path):
    data = good_pth.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="truncated.pth"):
        load_network(bad)


def test_corrupted_checkpoint(good_pth, tmp_path):
    data = bytearray(good_pth.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = os.urandom(4096)
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="corrupt"):
        load_network(bad)


def test_empty_and_non_checkpoint_files(tmp_path):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty"):
        load_network(empty)
    text = tmp_path / "notes.ckpt"
    text.write_text("this is not a checkpoint\n" * 100)
    with pytest.raises(CorruptFileError):
        load_network(text)
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_network(tmp_path / "nope.ckpt")


def test_other_architecture_is_refused(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    path = tmp_path / "other.pth"
    torch.save({"state_dict": other.state_dict()}, path)
    with pytest.raises(CheckpointError, match="not a PARE checkpoint"):
        load_network(path)


def test_other_pare_variant_names_the_mismatched_keys(tmp_path):
    """A PARE head with 256-wide branches (the code default) against the released 128."""
    variant = PARE(PareConfig(num_deconv_filters=256)).state_dict()
    path = write_mmhuman3d_pth(variant, tmp_path / "wide.pth")
    with pytest.raises(CheckpointError) as info:
        load_network(path)
    message = str(info.value)
    assert "head.keypoint_deconv_layers.0.weight: expected [128, 480, 3, 3], found [256, 480, 3, 3]" in message


def test_wrong_shaped_tensor(weights, tmp_path):
    broken = OrderedDict(weights)
    broken["head.shape_mlp.weight"] = torch.zeros(10, 1535)
    with pytest.raises(CheckpointError, match=r"head.shape_mlp.weight: expected \[10, 1536\], found \[10, 1535\]"):
        load_network(write_mmhuman3d_pth(broken, tmp_path / "shape.pth"))


def test_missing_and_unexpected_keys_are_named(weights, tmp_path):
    broken = OrderedDict(weights)
    del broken["backbone.stage4.2.fuse_layers.3.0.2.1.running_var"]
    broken["head.extra_layer.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as info:
        load_network(write_mmhuman3d_pth(broken, tmp_path / "keys.pth"))
    message = str(info.value)
    assert "backbone.stage4.2.fuse_layers.3.0.2.1.running_var (expected shape [256])" in message
    assert "head.extra_layer.weight" in message


def test_unknown_top_level_entries_are_refused(weights, tmp_path):
    broken = OrderedDict(weights)
    broken["decoder.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="unexpected entries: decoder.weight"):
        load_network(write_mmhuman3d_pth(broken, tmp_path / "extra.pth"))


class _Payload:
    """Unpickling this would run a shell command creating a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_payload_is_refused_and_not_run(weights, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": dict(weights), "callbacks": _Payload(marker)}, path)
    with pytest.raises(UnsafeFileError, match="system"):
        load_network(path)
    assert not marker.exists()


class _DisguisedPayload:
    """A callable from an allow-listed metadata namespace used as a payload: it must be
    replaced by an inert stand-in, never called."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        from numpy.testing._private.utils import runstring

        return (runstring, (f"open({str(self.marker)!r}, 'w').write('x')", {}))


def test_metadata_namespace_payload_is_inert(weights, tmp_path):
    marker = tmp_path / "pwned2"
    path = tmp_path / "disguised.pth"
    torch.save({"state_dict": dict(weights), "meta": {"hook": _DisguisedPayload(marker)}}, path)
    load_network(path)
    assert not marker.exists()


def test_lightning_hparams_are_validated(weights, tmp_path):
    hparams = {"PARE": {"BACKBONE": "resnet50", "USE_MEAN_CAMSHAPE": True},
               "DATASET": {"USE_HEATMAPS": "part_segm"}}
    path = write_lightning_ckpt(weights, tmp_path / "r50.ckpt", hparams=hparams)
    with pytest.raises(UnsupportedConfigError) as info:
        load_network(path)
    assert "PARE.BACKBONE='resnet50'" in str(info.value)
    assert "PARE.USE_MEAN_CAMSHAPE=True" in str(info.value)


def test_companion_yaml_is_read_and_checked(weights, tmp_path):
    ckpt = write_lightning_ckpt(weights, tmp_path / "pare_checkpoint.ckpt")
    yaml_path = tmp_path / "pare_config.yaml"
    yaml_path.write_text("PARE:\n  SOFTMAX_TEMP: 0.5\n  KEYPOINT_ATTENTION_ACT: sigmoid\n")
    with pytest.raises(UnsupportedConfigError, match="KEYPOINT_ATTENTION_ACT='sigmoid'.*SOFTMAX_TEMP=0.5 \\(supported: 1.0\\)"):
        load_network(ckpt)
    yaml_path.write_text("PARE:\n  BACKBONE: hrnet_w32-conv\n  NUM_DECONV_FILTERS: 128\n"
                         "DATASET:\n  USE_HEATMAPS: part_segm\n  FOCAL_LENGTH: 5000.0\n")
    model = load_network(ckpt)
    assert model.checkpoint_info.config_source == str(yaml_path)


def test_yaml_shape_options_build_the_matching_network(tmp_path):
    """Shape-bearing YAML options are followed: a 256-wide variant loads with its YAML."""
    variant = PARE(PareConfig(num_deconv_filters=256)).state_dict()
    ckpt = write_mmhuman3d_pth(variant, tmp_path / "wide.pth")
    config = tmp_path / "wide_config.yaml"
    config.write_text("PARE:\n  NUM_DECONV_FILTERS: [256, 256]\n")
    model = load_network(ckpt, config_path=config)
    assert model.head.keypoint_deconv_layers[0].out_channels == 256
