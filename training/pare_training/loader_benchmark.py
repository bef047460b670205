"""Data-loading throughput: images/s of the training input pipeline per DataLoader worker count.

    python -m pare_training.loader_benchmark [--workers 0 1 2 4] [--count 64] [--batch-size 8]
        [--batches 6] [--image-size 640 480] [--label-size 224] [--data NPZ --image-root DIR]

Builds the exact training pipeline (``build_dataset``: HumanDataset crops + augmentation, the
stage-1 part labels when ``--label-size`` > 0, bad-sample guard; ``GlobalOrderSampler``;
``make_loader``) on synthetic HumanData (generated once into a temporary folder, 640×480 PNGs
by default, about COCO's size) or on a given file, and reports per worker count the time to the
first batch (worker start-up) and the steady-state images/s over the following batches. No
model runs: this is the rate at which the loader could feed a GPU.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .config import TrainConfig


def measure(config: TrainConfig, workers: int, batches: int,
            prefetch_factor: int = 2) -> Dict[str, float]:
    """{"workers", "first_batch_s", "images_per_s"}: time to the first batch, then the rate
    over ``batches`` batches after the ``workers · prefetch_factor`` that were prepared ahead
    while waiting for the first (timing those would overstate the rate)."""
    from pare_ros.body_model import BodyModel

    from .data_loading import GlobalOrderSampler, build_dataset, make_loader
    body = BodyModel.from_dir(config.model_dir)
    ds = build_dataset(config, body)
    sampler = GlobalOrderSampler(ds, config.batch_size, config.batch_size, 1, seed=config.seed)
    ahead = workers * prefetch_factor
    need = (batches + ahead + 1) * config.batch_size
    if len(ds) < need:
        raise ValueError(f"{len(ds)} samples < {need} needed: lower --batches")
    t0 = time.perf_counter()
    it = iter(make_loader(ds, sampler, workers, pin_memory=False,
                          prefetch_factor=prefetch_factor))
    next(it)
    t_first = time.perf_counter() - t0
    for _ in range(ahead):
        next(it)
    t1 = time.perf_counter()
    for _ in range(batches):
        next(it)
    t2 = time.perf_counter()
    del it
    return {"workers": workers, "first_batch_s": t_first,
            "images_per_s": batches * config.batch_size / (t2 - t1)}


def run(workers: Sequence[int], count: int, batch_size: int, batches: int,
        image_size: Sequence[int], label_size: int, data: Optional[str] = None,
        image_root: Optional[str] = None, model_dir: Optional[str] = None) -> List[Dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        from .synthetic_data import default_body_model
        default_body_model(model_dir, tmp)            # real SMPL if found, else the stand-in
        if (Path(tmp) / "synthetic_model").is_dir():
            model_dir = str(Path(tmp) / "synthetic_model")
        if data is None:
            from .synthetic_data import generate
            data = str(generate(Path(tmp) / "synth", count, model_dir=model_dir,
                                image_size=image_size, seed=0))
            image_root = str(Path(data).parent)
        config = TrainConfig(datasets=[{"path": data, "image_root": image_root or ".",
                                        "trust_pickle": True}], output_dir=tmp,
                             model_dir=model_dir, batch_size=batch_size, augment=True,
                             part_supervision=label_size > 0, label_size=max(label_size, 1),
                             # drawn with replacement from the `count` images
                             samples_per_epoch=(batches + 2 + 2 * max(workers)) * batch_size)
        return [measure(config, w, batches) for w in workers]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pare_training.loader_benchmark",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--count", type=int, default=64, help="synthetic images to generate")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20, help="timed batches (steady state)")
    parser.add_argument("--image-size", type=int, nargs=2, default=[640, 480], metavar=("W", "H"))
    parser.add_argument("--label-size", type=int, default=224,
                        help="part-label resolution (stage 1); 0: no part labels (stage 2)")
    parser.add_argument("--data", help="HumanData .npz instead of synthetic data")
    parser.add_argument("--image-root")
    parser.add_argument("--model-dir")
    args = parser.parse_args(argv)
    rows = run(args.workers, args.count, args.batch_size, args.batches, args.image_size,
               args.label_size, args.data, args.image_root, args.model_dir)
    print(f"CPU cores visible: {os.cpu_count()}; batch {args.batch_size}; part labels "
          f"{args.label_size or 'off'}; images {args.image_size[0]}x{args.image_size[1]}")
    print(f"{'workers':>7}  {'first batch s':>13}  {'images/s':>9}")
    for r in rows:
        print(f"{r['workers']:>7}  {r['first_batch_s']:>13.2f}  {r['images_per_s']:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
