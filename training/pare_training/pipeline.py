"""End-to-end training pipeline: data → evaluate → train → evaluate → ONNX → TensorRT → manifest.

    python -m pare_training.pipeline --out runs/demo --synthetic 64 --steps 200
    python -m pare_training.pipeline --out runs/real --data train.npz --image-root IMGS \
        --eval-data 3dpw_test.npz --eval-image-root 3DPW --trust-pickle --steps 20000 --device cuda

Steps (each reported; artefacts under ``--out``):
  1. ``--synthetic N``: generate N training images (``synthetic/``) and ``--eval-count`` held-out
     ones (``synthetic_eval/``, other seed; ``--eval-count 0`` evaluates on the training set);
  2. evaluate the initial weights (``init.pth``: fresh network, or ``--init-checkpoint``) →
     ``eval_initial/metrics.json``;
  3. train (``pare_training.train``) → ``train/checkpoints/step_*.pth``;
  4. evaluate the trained checkpoint → ``eval_trained/metrics.json``;
  5. export ONNX → ``onnx/pare_trained.onnx``;
  6. build a TensorRT engine (``engine/pare_trained_<precision>.engine``) when ``tensorrt`` imports
     and CUDA is available, else the step is skipped and the build command is printed;
  7. write ``model_manifest_entry.yaml``: paths + sha256 of checkpoint / ONNX / engine, metrics.

Using the result in the ROS node: either copy the checkpoint to ``model/checkpoints/`` and the
ONNX file to ``model/onnx/`` (and the engine next to the ONNX file, with its ``.json`` sidecar),
or set the node parameters ``model.checkpoint`` and ``model.onnx_path`` to the paths in the entry.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

import pare_ros
from pare_ros.model_files import sha256_file
from pare_ros.network import PARE, load_network

from .evaluate import evaluate, format_summary
from .train import TrainConfig, train


def resolve_model_dir(model_dir: Optional[str | Path], out: Path) -> Path | None:
    """``model_dir`` if given; else the default one when it holds a body model; else a synthetic
    stand-in body model written under ``out`` (results are then plumbing checks only)."""
    from pare_ros.body_model import BodyModel
    from pare_ros.model_files import MissingModelFileError
    if model_dir is not None:
        return Path(model_dir)
    try:
        BodyModel.from_dir(None)
        return None
    except MissingModelFileError:
        from pare_ros.body_model.synthetic import write_synthetic_model_dir
        d = out / "synthetic_model"
        if not (d / "smpl").is_dir():
            write_synthetic_model_dir(d)
        return d


def save_initial(path: Path, init_checkpoint: Optional[str], init_cam_scale: float,
                 seed: int) -> Path:
    """The starting weights as a checkpoint ``load_network`` reads (fresh PARE with the camera
    scale bias set, or a copy of ``init_checkpoint``)."""
    if init_checkpoint:
        model = load_network(init_checkpoint)
    else:
        torch.manual_seed(seed)
        model = PARE()
        with torch.no_grad():
            model.head.cam_mlp.bias[0] = init_cam_scale
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "meta": {"step": 0, "source": init_checkpoint or "fresh PARE()",
                         "pare_ros_version": pare_ros.__version__}}, path)
    return path


def build_trt(onnx_path: Path, engine_path: Path, precision: str, max_batch: int = 8) -> Dict[str, Any]:
    """Build the engine if TensorRT and CUDA are here; else {"built": False, "reason", "command"}."""
    from pare_ros.backends.tensorrt_engine import BuildSpec, build_command, build_engine
    spec = BuildSpec(precision=precision, max_batch=max_batch)
    cmd = build_command(onnx_path, engine_path, spec)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return {"built": False, "reason": "tensorrt is not installed here", "command": cmd}
    if not torch.cuda.is_available():
        return {"built": False, "reason": "no CUDA GPU", "command": cmd}
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = build_engine(onnx_path, engine_path, spec)
    return {"built": True, "path": str(engine_path), "sha256": sidecar["engine_sha256"],
            "sidecar": str(engine_path) + ".json", "precision": precision}


def _artefact(path: Optional[Path]) -> Optional[Dict[str, str]]:
    if path is None or not Path(path).is_file():
        return None
    return {"path": str(Path(path).resolve()), "sha256": sha256_file(path)}


def _mean(metrics: Dict[str, Any]) -> Dict[str, float]:
    return {k: round(v, 2) for k, v in metrics["mean"].items()}


def write_manifest_entry(path: Path, name: str, checkpoint: Path, onnx_path: Path,
                         engine: Dict[str, Any], before: Dict[str, Any], after: Dict[str, Any],
                         info: Dict[str, Any]) -> Path:
    import yaml
    engine_art = _artefact(Path(engine["path"])) if engine.get("built") else None
    entry = {
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pare_ros_version": pare_ros.__version__,
        "checkpoint": _artefact(checkpoint),
        "onnx": _artefact(onnx_path),
        "engine": engine_art if engine_art else {"built": False, "reason": engine.get("reason"),
                                                 "build_command": engine.get("command")},
        "metrics_mm": {"initial": _mean(before), "trained": _mean(after),
                       "eval_data": after["data"], "frames": after["frames"]},
        "training": info,
        "use": {
            "copy": {"checkpoint": f"model/checkpoints/{name}.pth",
                     "onnx": f"model/onnx/{onnx_path.name}"},
            "or_set_node_parameters": {"model.checkpoint": str(checkpoint.resolve()),
                                       "model.onnx_path": str(onnx_path.resolve())},
        },
    }
    path.write_text("# Written by python -m pare_training.pipeline. Copy the files to "
                    "model/checkpoints and model/onnx,\n# or point the node's model.checkpoint / "
                    "model.onnx_path at them.\n" + yaml.safe_dump(entry, sort_keys=False))
    return path


def run_pipeline(out: str | Path, *, synthetic: int = 0, eval_count: int = 8,
                 data: Optional[str] = None, image_root: Optional[str] = None,
                 eval_data: Optional[str] = None, eval_image_root: Optional[str] = None,
                 trust_pickle: bool = False, model_dir: Optional[str] = None, steps: int = 100,
                 batch_size: int = 8, lr: float = 1e-4, device: str = "cpu",
                 part_supervision: bool = True, label_size: int = 56, augment: bool = True,
                 num_workers: int = 0, init_checkpoint: Optional[str] = None,
                 eval_batch_size: int = 8, precision: str = "fp16", seed: int = 0,
                 name: str = "pare_trained", log=print) -> Dict[str, Any]:
    """Run all steps; returns a dict with the artefact paths, metrics and step timings."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    times: Dict[str, float] = {}
    t0 = time.time()
    mdir = resolve_model_dir(model_dir, out)
    if synthetic:
        from .synthetic_data import generate
        from pare_ros.body_model import BodyModel
        body = BodyModel.from_dir(mdir)
        data = str(generate(out / "synthetic", synthetic, body_model=body, seed=seed))
        image_root, trust_pickle = str(out / "synthetic"), True     # our own file
        if eval_count:
            eval_data = str(generate(out / "synthetic_eval", eval_count, body_model=body,
                                     seed=seed + 1000, name="synthetic_eval"))
            eval_image_root = str(out / "synthetic_eval")
        times["generate"] = time.time() - t0
        log(f"[data] {synthetic} training / {eval_count} held-out synthetic images "
            f"({times['generate']:.1f} s)")
    if data is None or image_root is None:
        raise ValueError("give --synthetic N or --data and --image-root")
    if eval_data is None:
        eval_data, eval_image_root = data, image_root
        log("[data] evaluating on the training set (no held-out set given)")
    ekw = dict(model_dir=mdir, batch_size=eval_batch_size, device=device,
               trust_pickle=trust_pickle)

    t = time.time()
    init_path = save_initial(out / "init.pth", init_checkpoint, 0.9, seed)
    before = evaluate(init_path, eval_data, eval_image_root, out_dir=out / "eval_initial", **ekw)
    times["eval_initial"] = time.time() - t
    log(f"[eval initial] {format_summary(before).splitlines()[0]} ({times['eval_initial']:.1f} s)")

    t = time.time()
    cfg = TrainConfig(datasets=[{"path": data, "image_root": image_root, "ratio": 1.0,
                                 "trust_pickle": trust_pickle}],
                      output_dir=str(out / "train"), model_dir=str(mdir) if mdir else None,
                      epochs=10 ** 6, max_steps=steps, batch_size=batch_size, lr=lr,
                      part_supervision=part_supervision, label_size=label_size, augment=augment,
                      num_workers=num_workers, device=device, init_checkpoint=str(init_path),
                      log_every=10, image_every=max(steps, 1), seed=seed)
    result = train(cfg)
    ckpt = Path(result["checkpoint"])
    times["train"] = time.time() - t
    log(f"[train] {result['step']} steps, last loss {result['last_terms'].get('total', float('nan')):.4g}"
        f" → {ckpt} ({times['train']:.1f} s)")

    t = time.time()
    after = evaluate(ckpt, eval_data, eval_image_root, out_dir=out / "eval_trained", **ekw)
    times["eval_trained"] = time.time() - t
    log(f"[eval trained] {format_summary(after).splitlines()[0]} ({times['eval_trained']:.1f} s)")

    t = time.time()
    from pare_ros.backends.onnx_export import export_onnx
    onnx_path = export_onnx(load_network(ckpt), out / "onnx" / f"{name}.onnx",
                            {"checkpoint": str(ckpt), "checkpoint_sha256": sha256_file(ckpt),
                             "training_steps": str(result["step"])})
    times["onnx"] = time.time() - t
    log(f"[onnx] {onnx_path} ({times['onnx']:.1f} s)")

    t = time.time()
    engine = build_trt(onnx_path, out / "engine" / f"{name}_{precision}.engine", precision)
    times["tensorrt"] = time.time() - t
    log(f"[tensorrt] built {engine['path']}" if engine["built"] else
        f"[tensorrt] skipped: {engine['reason']}; build on the target with: {engine['command']}")

    info = {"steps": result["step"], "batch_size": batch_size, "lr": lr, "device": device,
            "train_data": data, "part_supervision": part_supervision,
            "last_loss_terms": result["last_terms"],
            "seconds": {k: round(v, 1) for k, v in times.items()}}
    entry = write_manifest_entry(out / "model_manifest_entry.yaml", name, ckpt, onnx_path, engine,
                                 before, after, info)
    times["total"] = time.time() - t0
    report = {"out": str(out), "checkpoint": str(ckpt), "onnx": str(onnx_path), "engine": engine,
              "manifest_entry": str(entry), "metrics_initial": before["mean"],
              "metrics_trained": after["mean"], "train": result, "seconds": times}
    (out / "pipeline_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    b, a = before["mean"], after["mean"]
    log("\n=== pipeline report ===")
    for k in ("mpjpe", "pa_mpjpe", "pve"):
        log(f"{k:>9}: {b[k]:8.1f} → {a[k]:8.1f} mm ({a[k] - b[k]:+.1f})")
    log(f"checkpoint {ckpt}\nonnx       {onnx_path}\nengine     "
        f"{engine['path'] if engine['built'] else 'not built (' + engine['reason'] + ')'}\n"
        f"manifest   {entry}\ntotal {times['total']:.1f} s")
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pare_training.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--synthetic", type=int, default=0, metavar="N",
                   help="generate N synthetic training images (instead of --data)")
    p.add_argument("--eval-count", type=int, default=8,
                   help="held-out synthetic images (0: evaluate on the training set)")
    p.add_argument("--data"), p.add_argument("--image-root")
    p.add_argument("--eval-data"), p.add_argument("--eval-image-root")
    p.add_argument("--trust-pickle", action="store_true",
                   help="read pickled smpl/meta/misc keys of --data/--eval-data (trusted files)")
    p.add_argument("--model-dir", default=None)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--eval-batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--no-part-supervision", action="store_true")
    p.add_argument("--label-size", type=int, default=56)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--init-checkpoint", default=None)
    p.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="pare_trained")
    a = p.parse_args(argv)
    run_pipeline(a.out, synthetic=a.synthetic, eval_count=a.eval_count, data=a.data,
                 image_root=a.image_root, eval_data=a.eval_data,
                 eval_image_root=a.eval_image_root, trust_pickle=a.trust_pickle,
                 model_dir=a.model_dir, steps=a.steps, batch_size=a.batch_size, lr=a.lr,
                 device=a.device, part_supervision=not a.no_part_supervision,
                 label_size=a.label_size, augment=not a.no_augment, num_workers=a.num_workers,
                 init_checkpoint=a.init_checkpoint, eval_batch_size=a.eval_batch_size,
                 precision=a.precision, seed=a.seed, name=a.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
