"""Distributed training (torchrun + Gloo on this CPU): 2 processes = 1 process at the same global
batch, resume after SIGKILL on another process count, global sample order, recipe, configs.

Equality conditions: the tiny model (``model: tiny``: PARE's outputs, two conv+BatchNorm
layers), deterministic data (augmentation is seeded per (seed, epoch, sample), so it is on),
identical initial weights (seeded; DDP also broadcasts rank 0's), and ``batchnorm: frozen``
(BatchNorm in eval mode: per-process batch statistics would otherwise differ from the
1-process ones). Tolerance: float32 summation order differs between batch 4 and 2 × 2.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pare_ros.body_model import BodyModel
from pare_ros.body_model.synthetic import write_synthetic_model_dir
from pare_training.config import TrainConfig, load_config, save_config
from pare_training.data_loading import BadSampleLog, GlobalOrderSampler, RobustDataset
from pare_training.humandata import MixedDataset
from pare_training.loop import build_model, resolve_precision
from pare_training.schedule import lr_factor
from pare_training.train import train
from test_training_loop import _make_humandata

TOL = 1e-5


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    write_synthetic_model_dir(root / "model")
    body = BodyModel.from_dir(root / "model")
    return root, _make_humandata(root / "data", body, n=8)


def _config(root: Path, data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(datasets=[{"path": str(data), "image_root": str(data.parent), "ratio": 1.0,
                           "trust_pickle": True}],
                output_dir=str(out), model_dir=str(root / "model"), model="tiny", epochs=50,
                batch_size=4, samples_per_epoch=8, lr=1e-2, lr_schedule="cosine", warmup_steps=2,
                label_size=56, batchnorm="frozen", log_every=1, image_every=10 ** 6,
                record_sample_order=True, checkpoint_every=1, seed=0,
                part_supervision=False)      # part labels: in the recipe test (cost: 2x here)
    base.update(kw)
    return TrainConfig(**base)


def _launch(cfg: TrainConfig, nproc: int, tmp: Path) -> subprocess.Popen:
    """torchrun --standalone --nproc_per_node N -m pare_training.train (N=1: the plain CLI)."""
    path = tmp / f"cfg_{time.monotonic_ns()}.yaml"
    save_config(cfg, path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "pare_training.train", "--config", str(path)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(nproc), "-m", "pare_training.train", "--config", str(path)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _descendants(pid: int) -> list:
    """Process ids below ``pid`` (torchrun starts its workers in sessions of their own, so
    killing its process group alone would leave them running)."""
    children: dict = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _kill_run(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and every worker at once, as a node failure would."""
    for pid in _descendants(proc.pid) + [proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate(timeout=60)


def _order(out: Path) -> list:
    return [json.loads(ln) for ln in (out / "sample_order.jsonl").read_text().splitlines()]


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a
               if a[k].is_floating_point())


def _state(out: Path, step: int) -> dict:
    return torch.load(out / "checkpoints" / f"step_{step:08d}.pth", map_location="cpu",
                      weights_only=True)


def test_two_processes_equal_one_and_resume_after_kill_on_other_count(setup, tmp_path):
    """One torchrun launch (2 Gloo processes, SIGKILLed after its step-3 checkpoint); the
    1-process runs are in this process (same code path as ``python -m pare_training.train``;
    it saves ~15 s of imports per launch on this 2-core machine)."""
    root, data = setup
    killed = tmp_path / "killed"
    proc = _launch(_config(root, data, killed), 2, tmp_path)
    deadline = time.monotonic() + 240
    while not (killed / "checkpoints" / "step_00000003.pth").exists():
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "no checkpoint at step 3 within 240 s"
        time.sleep(0.05)
    _kill_run(proc)
    k = max(int(p.stem.split("_")[1]) for p in (killed / "checkpoints").glob("step_*.pth"))
    assert 3 <= k < 90
    steps = k + 2                                     # k = 3: resumes mid-epoch, ends in epoch 2

    ref = tmp_path / "ref"                            # 1 process, uninterrupted, same config
    train(_config(root, data, ref, max_steps=steps))
    r_k, r_final = _state(ref, k), _state(ref, steps)
    init = build_model(_config(root, data, ref), torch.device("cpu")).state_dict()
    assert _max_diff(init, r_final["state_dict"]) > 1000 * TOL     # training moved the weights
    # 2 processes (batch 2 each) = 1 process (batch 4) after k steps
    assert _max_diff(r_k["state_dict"], _state(killed, k)["state_dict"]) < TOL
    assert _order(killed)[:k] == _order(ref)[:k]

    # resume the killed 2-process run with 1 process: same samples, same result
    result = train(_config(root, data, killed, max_steps=steps))
    assert result["step"] == steps
    final = _state(killed, steps)
    assert final["meta"]["world_size"] == 1 and final["scheduler"]["last_epoch"] == steps
    assert _max_diff(r_final["state_dict"], final["state_dict"]) < TOL
    assert _order(killed) == _order(ref)
    order = _order(ref)
    assert [o["step"] for o in order] == list(range(1, steps + 1))
    # every epoch (2 steps of 4) is a permutation of the 8 positions; epochs differ
    e0 = order[0]["samples"] + order[1]["samples"]
    e1 = order[2]["samples"] + order[3]["samples"]
    assert sorted(e0) == sorted(e1) == list(range(8)) and e0 != e1
    launches = json.loads((killed / "run_info.json").read_text())
    assert [x["world_size"] for x in launches] == [2, 1]
    assert launches[1]["resumed_from"].endswith(f"step_{k:08d}.pth")
    assert load_config(killed / "config.yaml").max_steps == steps

    # 2 accumulated micro-batches of 2 = one batch of 4
    acc = tmp_path / "accum"
    train(_config(root, data, acc, max_steps=2, grad_accum_steps=2))
    assert _max_diff(_state(ref, 2)["state_dict"], _state(acc, 2)["state_dict"]) < TOL
    assert _order(acc) == _order(ref)[:2]


@pytest.mark.parametrize("world,accum", [(1, 1), (2, 1), (4, 1), (2, 2)])
def test_sampler_order_depends_on_global_position_only(world, accum):
    data = list(range(50))
    ref = GlobalOrderSampler(data, 8, 8, 1, 1, 0, seed=3)
    ref.set_epoch(1)
    want = ref.global_order()[:6 * 8]                # 6 steps of 8, tail of 2 dropped
    micro = 8 // (world * accum)
    samplers = [GlobalOrderSampler(data, 8, micro, accum, world, r, seed=3) for r in range(world)]
    for start in (0, 4):
        per_rank = []
        for s in samplers:
            s.set_epoch(1)
            s.set_start_step(start)
            per_rank.append(list(s))
            assert len(s) == len(per_rank[-1])
        got = []
        for step in range(6 - start):                # reassemble: step, micro-step, rank
            for a in range(accum):
                for r in range(world):
                    i = (step * accum + a) * micro
                    got += per_rank[r][i:i + micro]
        assert got == want[start * 8:]
    samplers[0].set_epoch(2)
    assert samplers[0].global_order() != want


def test_mixed_ratios_are_one_draw_shared_by_all_ranks():
    a, b = list(range(10)), list(range(100, 130))
    draws = [MixedDataset([a, b], [0.25, 0.75], length=4000, seed=5) for _ in range(2)]
    for d in draws:
        d.set_epoch(3)
    assert np.array_equal(draws[0].which, draws[1].which)
    assert abs(draws[0].which.mean() - 0.75) < 0.03


def _corrupt(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 10)


def test_corrupt_image_and_truncated_annotation_are_counted_and_training_continues(
        setup, tmp_path):
    root, data = setup
    cut = tmp_path / "cut.npz"
    raw = data.read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    images = tmp_path / "images_copy"
    (images / "images").mkdir(parents=True)
    for p in (data.parent / "images").iterdir():
        (images / "images" / p.name).write_bytes(p.read_bytes())
    # corrupt the image the mixed dataset draws first in epoch 0
    first = int(MixedDataset([list(range(8))], [1.0], 8, seed=0).inner[0])
    _corrupt(images / "images" / f"{first}.png")
    cfg = _config(root, data, tmp_path / "run", max_steps=2, record_sample_order=False,
                  checkpoint_every=None, max_bad_sample_fraction=0.5,
                  datasets=[{"path": str(data), "image_root": str(images), "trust_pickle": True},
                            {"path": str(cut), "image_root": str(images), "trust_pickle": True}])
    with pytest.warns(RuntimeWarning, match="cut.npz left out"):
        result = train(cfg)
    assert result["step"] == 2
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report == result["data_report"]
    assert report["bad_samples"] >= 1 and report["samples_seen"] == 8
    assert f"{first}.png" in report["examples"][0]
    assert [d["path"] for d in report["skipped_datasets"]] == [str(cut)]
    # a missing image folder or dataset file is a configuration error, at once
    with pytest.raises(FileNotFoundError, match="image_root .* is not a directory"):
        train(dataclasses.replace(cfg, datasets=[{"path": str(data), "image_root": "/nonexistent"}]))
    with pytest.raises(FileNotFoundError, match="dataset file not found"):
        train(dataclasses.replace(cfg, datasets=[{"path": "/no.npz", "image_root": str(images)}]))


def test_robust_dataset_replaces_and_gives_up_with_a_clear_error():
    class Flaky:
        def __init__(self, bad):
            self.bad = bad

        def __len__(self):
            return 5

        def __getitem__(self, i):
            if i in self.bad:
                raise FileNotFoundError(f"image {i} unreadable")
            return {"i": i}

    item = RobustDataset(Flaky({1, 2}))[1]
    assert item["i"] == 3 and item["sample_position"] == 1
    assert [p for p, _ in item["bad_samples"]] == [1, 2]
    with pytest.raises(RuntimeError, match="image_root"):
        RobustDataset(Flaky(set(range(5))), max_tries=5)[0]
    log = BadSampleLog()
    log.add([(0, "x")] * 2, 64)
    assert log.exceeded(0.05) is None and "2 of 64" in log.exceeded(0.01)


def test_two_stage_recipe_from_one_config_and_rerun_resumes(setup, tmp_path):
    root, data = setup
    cfg = _config(root, data, tmp_path / "recipe", record_sample_order=False,
                  checkpoint_every=None, part_supervision=True, stages=[{"name": "stage1", "max_steps": 1},
                                                 {"name": "stage2", "part_supervision": False,
                                                  "max_steps": 1, "lr": 1e-3}])
    result = train(cfg)
    s1 = tmp_path / "recipe" / "stage1" / "checkpoints" / "step_00000001.pth"
    s2 = tmp_path / "recipe" / "stage2" / "checkpoints" / "step_00000001.pth"
    assert result["stages"] == {"stage1": s1, "stage2": s2}
    assert "part_segm" not in result["last_terms"] and "pose" in result["last_terms"]
    meta2 = torch.load(s2, weights_only=True)["meta"]
    assert meta2["config"]["init_checkpoint"] == str(s1)
    assert meta2["config"]["part_supervision"] is False and meta2["config"]["lr"] == 1e-3
    assert torch.load(s1, weights_only=True)["meta"]["config"]["part_supervision"] is True
    assert load_config(tmp_path / "recipe" / "recipe.yaml").stages == cfg.stages
    again = train(cfg)                              # finished stages: nothing is redone
    assert again["stages"] == result["stages"]
    assert sorted(p.name for p in s2.parent.iterdir()) == ["step_00000001.pth"]


def test_config_validation_and_precision(tmp_path):
    cfg = TrainConfig(datasets=[{"path": "a.npz", "image_root": "."}], output_dir="o",
                      batch_size=6, grad_accum_steps=2, stages=[{"name": "s", "lr": 1.0}])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert cfg.micro_batch(3) == 1
    with pytest.raises(ValueError, match="not divisible by 2 processes × grad_accum_steps 2"):
        cfg.micro_batch(2)
    (tmp_path / "old.yaml").write_text(yaml.safe_dump({**dataclasses.asdict(cfg), "amp": True}))
    with pytest.raises(ValueError, match="'amp' was replaced by 'precision'"):
        load_config(tmp_path / "old.yaml")
    with pytest.raises(ValueError, match="stages\\[0\\]: unknown key"):
        TrainConfig(datasets=cfg.datasets, output_dir="o", stages=[{"lrr": 1}])
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("fp32", None)
    assert resolve_precision("bf16", cpu) == ("bf16", torch.bfloat16)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="SyncBatchNorm"):
        build_model(dataclasses.replace(cfg, model="tiny", batchnorm="sync"), cpu)


def test_lr_schedules_known_values():
    cfg = TrainConfig(datasets=[{"path": "a", "image_root": "."}], output_dir="o", epochs=10,
                      lr_schedule="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg, 11) == pytest.approx(0.1)          # warm-up (step+1)/10
    assert lr_factor(9, cfg, 11) == pytest.approx(1.0)
    assert lr_factor(10 + 50, cfg, 11) == pytest.approx(0.55)   # half way: 0.1 + 0.9·0.5
    assert lr_factor(10 ** 6, cfg, 11) == pytest.approx(0.1)
    step = dataclasses.replace(cfg, lr_schedule="step", warmup_steps=0, lr_milestones=[2, 5])
    assert [lr_factor(s, step, 10) for s in (19, 20, 49, 50)] == pytest.approx(
        [1.0, 0.1, 0.1, 0.01])


def test_every_trainable_pare_parameter_gets_a_gradient(tmp_path):
    """DDP (find_unused_parameters off) stops on a trainable parameter outside the loss graph:
    the real PARE's unused HRNet keypoint head must be frozen by build_model."""
    cfg = TrainConfig(datasets=[{"path": "a", "image_root": "."}], output_dir=str(tmp_path),
                      model="pare", part_supervision=False)
    model = build_model(cfg, torch.device("cpu"))
    out = model(torch.randn(1, 3, 64, 64))
    sum(v.float().sum() for k, v in out.items() if k != "pred_segm_mask").backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert not model.backbone.final_layer.weight.requires_grad
