"""Datasets and loaders for training: global sample order, part labels, bad-sample handling.

Sample order. Epoch e visits a permutation of the (mixed) dataset drawn from ``(seed, e)``; the
permutation is cut into global batches of ``batch_size`` positions. Position p belongs to step
p // batch_size; within a step, micro-step a of rank r reads the ``micro`` positions starting at
``a·world·micro + r·micro``. The global order therefore does not depend on the number of
processes, and a resume continues at global sample position ``step · batch_size`` on any process
count (:class:`GlobalOrderSampler`).

Bad samples. An unreadable image (missing, corrupt) does not stop a run hours in: the sample is
replaced by the next readable position (deterministically, so every process count sees the same
replacement), and the skip is counted and reported (:class:`RobustDataset`, :class:`BadSampleLog`).
A dataset file that cannot be read is left out of the mix (``skip_unreadable_datasets``) and
reported; a missing file or image folder is a configuration error and fails at start.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, default_collate

from pare_ros.body_model import BodyModel

from .config import TrainConfig
from .humandata import HumanDataError, HumanDataset, MixedDataset
from .part_labels import estimate_crop_translation, render_part_labels

#: Exceptions that mark one sample (not the code) as broken: unreadable image files, cv2
#: decode errors, malformed per-sample annotations.
SAMPLE_ERRORS: Tuple[type, ...] = (OSError, HumanDataError)
try:
    import cv2
    SAMPLE_ERRORS = SAMPLE_ERRORS + (cv2.error,)
except ImportError:           # pragma: no cover - cv2 is a dependency of the datasets
    pass


class GlobalOrderSampler(DistributedSampler):
    """DistributedSampler whose order is a function of the global sample position only.

    ``set_epoch(e)`` reseeds the permutation (with ``(seed, e)``);
    ``set_start_step(s)`` skips the first ``s`` steps of the epoch (resume). Yields this rank's
    dataset indices, micro-batch after micro-batch; the tail that fills no global batch is
    dropped (``len(dataset) // batch_size`` steps per epoch).
    """

    def __init__(self, dataset: Dataset, global_batch: int, micro_batch: int, accum: int,
                 num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=True)
        if micro_batch * accum * num_replicas != global_batch:
            raise ValueError(f"micro_batch {micro_batch} × accum {accum} × processes "
                             f"{num_replicas} != global batch {global_batch}")
        self.global_batch, self.micro, self.accum = global_batch, micro_batch, accum
        self.steps_per_epoch = len(dataset) // global_batch
        self.start_step = 0

    def set_start_step(self, step: int) -> None:
        self.start_step = int(step)

    def global_order(self) -> List[int]:
        """This epoch's dataset index at every global position (all ranks). The permutation
        is the one the single-process trainer always used (NumPy, seeded with (seed, epoch)),
        so 1-process runs keep their sample order."""
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.dataset)).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self.global_order()
        for step in range(self.start_step, self.steps_per_epoch):
            base = step * self.global_batch
            for a in range(self.accum):
                start = base + (a * self.num_replicas + self.rank) * self.micro
                yield from order[start:start + self.micro]

    def __len__(self) -> int:
        return max(self.steps_per_epoch - self.start_step, 0) * self.accum * self.micro


class _Wrapper(Dataset):
    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:          # set_epoch etc. of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


class PartLabelDataset(_Wrapper):
    """Adds ``part_labels`` (long [S,S]) and ``has_part_labels`` to a dataset's items, rendered
    from the GT SMPL parameters placed with the translation fitted to the GT 2D keypoints."""

    def __init__(self, dataset: Any, body_model: BodyModel, focal_length: float = 5000.0,
                 img_res: int = 224, label_size: int = 224) -> None:
        super().__init__(dataset)
        self.body = body_model
        self.focal_length, self.img_res, self.label_size = focal_length, img_res, label_size
        self.faces, self.vertex_parts = body_model.faces, body_model.vertex_parts

    def __getitem__(self, i: int) -> Dict[str, Any]:
        item = self.dataset[i]
        labels = torch.zeros(self.label_size, self.label_size, dtype=torch.long)
        ok = False
        if float(item["has_smpl"]) > 0:
            with torch.no_grad():
                out = self.body(item["pose_rotmat"][None].float(), item["betas"][None].float())
            t = estimate_crop_translation(out.joints49[0, 25:].numpy(),
                                          item["keypoints"][25:].numpy(), self.focal_length,
                                          self.img_res)
            if t is not None:
                k = self.label_size / self.img_res
                lab = render_part_labels(out.vertices[0].numpy() + t, self.faces,
                                         self.vertex_parts, self.focal_length * k,
                                         size=self.label_size)
                labels, ok = torch.from_numpy(lab.astype(np.int64)), True
        item["part_labels"] = labels
        item["has_part_labels"] = torch.tensor(float(ok))
        return item


class RobustDataset(_Wrapper):
    """Item ``j`` of ``dataset``, or — when it is unreadable — the next readable one (j+1, j+2,
    … mod N, at most ``max_tries``). Each item carries ``sample_position`` (= j, what was asked
    for) and ``bad_samples``: ``[(position, message), ...]`` of the ones skipped for it."""

    def __init__(self, dataset: Any, max_tries: int = 16) -> None:
        super().__init__(dataset)
        self.max_tries = max_tries

    def __getitem__(self, j: int) -> Dict[str, Any]:
        bad: List[Tuple[int, str]] = []
        n = len(self.dataset)
        for k in range(self.max_tries):
            pos = (j + k) % n
            try:
                item = self.dataset[pos]
            except SAMPLE_ERRORS as exc:
                bad.append((pos, f"{type(exc).__name__}: {exc}"))
                continue
            item["sample_position"] = j
            item["bad_samples"] = bad
            return item
        raise RuntimeError(
            f"{self.max_tries} consecutive samples from position {j} are unreadable, e.g. "
            f"{bad[0][1]}; check the datasets' image_root (is it the folder the image_path "
            "entries are relative to?)")


def collate(items: List[Dict[str, Any]]) -> Dict[str, Any]:
    """default_collate, except ``bad_samples`` (variable length) is concatenated to a list."""
    bad = [b for it in items for b in it.pop("bad_samples", [])]
    batch = default_collate(items)
    batch["bad_samples"] = bad
    return batch


class BadSampleLog:
    """Counts of unreadable samples / datasets and the first few messages (for the report)."""

    def __init__(self, keep: int = 20) -> None:
        self.count, self.seen, self.keep = 0, 0, keep
        self.examples: List[str] = []
        self.skipped_datasets: List[Dict[str, str]] = []

    def add(self, batch_bad: List[Tuple[int, str]], batch_size: int) -> None:
        self.seen += batch_size
        self.count += len(batch_bad)
        for pos, msg in batch_bad:
            if len(self.examples) < self.keep:
                self.examples.append(f"position {int(pos)}: {msg}")

    def exceeded(self, max_fraction: float, min_seen: int = 64) -> Optional[str]:
        """The error message when more than ``max_fraction`` of the samples seen so far (at
        least ``min_seen`` of them) were unreadable, else None."""
        if self.seen >= min_seen and self.count > max_fraction * self.seen:
            return (f"{self.count} of {self.seen} samples were unreadable (> "
                    f"max_bad_sample_fraction {max_fraction}); first: {self.examples[:3]}. "
                    "Fix the data or raise the limit.")
        return None

    def report(self) -> Dict[str, Any]:
        return {"bad_samples": self.count, "samples_seen": self.seen,
                "examples": self.examples, "skipped_datasets": self.skipped_datasets}


def _check_image_root(spec: Any) -> None:
    root = Path(spec.image_root)
    if not root.is_dir():
        raise FileNotFoundError(f"image_root of dataset {spec.path} is not a directory: {root} "
                                "(set datasets[].image_root to the folder its image_path "
                                "entries are relative to)")


def _first_images_exist(ds: HumanDataset, spec: Any, probe: int = 8) -> None:
    paths = [ds.image_root / p for p in ds.image_paths[:probe]]
    if paths and not any(p.is_file() for p in paths):
        raise FileNotFoundError(
            f"none of the first {len(paths)} images of {spec.path} exist under image_root "
            f"{spec.image_root} (e.g. {paths[0]}); wrong image_root?")


def check_dataset_paths(config: TrainConfig) -> None:
    """FileNotFoundError naming the entry when a dataset file or image folder is missing
    (cheap: run before anything slow is loaded)."""
    for k, spec in enumerate(config.datasets):
        if not Path(spec.path).is_file():
            raise FileNotFoundError(f"dataset file not found: {spec.path} (datasets[{k}].path)")
        _check_image_root(spec)


def build_dataset(config: TrainConfig, body_model: BodyModel,
                  log: Optional[BadSampleLog] = None) -> Dataset:
    """Mixed, part-labelled (stage 1) and bad-sample-robust dataset of ``config``.

    Raises FileNotFoundError for a missing dataset file or image folder; a dataset file that
    exists but cannot be read (truncated, corrupt) is left out with a warning and recorded in
    ``log.skipped_datasets`` when ``skip_unreadable_datasets`` (else HumanDataError).
    """
    from .augment import Augmenter
    check_dataset_paths(config)
    sets, ratios = [], []
    for k, spec in enumerate(config.datasets):
        try:
            ds = HumanDataset(spec.path, spec.image_root, trust_pickle=spec.trust_pickle,
                              augment=Augmenter() if config.augment else None,
                              seed=config.seed + k)
        except HumanDataError as exc:
            if not config.skip_unreadable_datasets or "trust_pickle" in str(exc):
                raise
            warnings.warn(f"dataset {spec.path} left out of the mix: {exc}", RuntimeWarning)
            if log is not None:
                log.skipped_datasets.append({"path": spec.path, "error": str(exc)})
            continue
        _first_images_exist(ds, spec)
        sets.append(ds)
        ratios.append(spec.ratio)
    if not sets:
        raise HumanDataError("no readable dataset left: " + "; ".join(
            d["error"] for d in (log.skipped_datasets if log else [])))
    ds = MixedDataset(sets, ratios, config.samples_per_epoch, seed=config.seed)
    if config.part_supervision:
        ds = PartLabelDataset(ds, body_model, label_size=config.label_size)
    return RobustDataset(ds)


def _worker_init(_worker_id: int) -> None:
    # One intra-op thread per worker: N workers on N cores instead of N×N threads fighting.
    torch.set_num_threads(1)
    try:
        import cv2
        cv2.setNumThreads(0)
    except ImportError:          # pragma: no cover
        pass


def make_loader(dataset: Dataset, sampler: GlobalOrderSampler, num_workers: int,
                pin_memory: bool, prefetch_factor: int = 2) -> torch.utils.data.DataLoader:
    """DataLoader of micro-batches in ``sampler`` order (workers, pinned memory)."""
    kwargs: Dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, worker_init_fn=_worker_init)
    return torch.utils.data.DataLoader(dataset, batch_size=sampler.micro, sampler=sampler,
                                       num_workers=num_workers, pin_memory=pin_memory,
                                       collate_fn=collate, drop_last=False, **kwargs)


def steps_per_epoch(dataset_len: int, batch_size: int) -> int:
    n = dataset_len // batch_size
    if n == 0:
        raise ValueError(f"{dataset_len} samples per epoch < global batch size {batch_size}")
    return n


__all__ = ["GlobalOrderSampler", "PartLabelDataset", "RobustDataset", "BadSampleLog",
           "build_dataset", "make_loader", "collate", "steps_per_epoch"]
