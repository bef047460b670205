"""The network I/O contract every inference backend honours.

Input ``images``: float32 [N,3,224,224] ImageNet-normalised RGB crops (N = people, dynamic).
Outputs (float32, batch first): ``pred_pose`` [N,24,3,3], ``pred_shape`` [N,10],
``pred_cam`` [N,3], ``pred_segm_mask`` [N,25,56,56]. This is what
:class:`pare_ros.estimator.BodyEstimator` reads from its backend.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch

INPUT_NAME = "images"
INPUT_SHAPE: Tuple[int, ...] = (3, 224, 224)           # per item, after the batch axis
OUTPUT_SHAPES: Dict[str, Tuple[int, ...]] = {            # per item, after the batch axis
    "pred_pose": (24, 3, 3),
    "pred_shape": (10,),
    "pred_cam": (3,),
    "pred_segm_mask": (25, 56, 56),
}
OUTPUT_NAMES: Tuple[str, ...] = tuple(OUTPUT_SHAPES)


class ContractError(ValueError):
    """A model file's inputs/outputs do not match the backend contract; the message says how."""


def _dims_match(found: Sequence, expected: Sequence[int]) -> bool:
    """Compare per-item dims; symbolic (str/None/-1) dims in ``found`` are rejected, since
    only the batch axis may be dynamic."""
    if len(found) != len(expected):
        return False
    return all(isinstance(f, int) and f == e for f, e in zip(found, expected))


def check_io(source: str, inputs: Mapping[str, Sequence], outputs: Mapping[str, Sequence]) -> None:
    """Validate model I/O (name → full shape incl. batch axis, symbolic dims allowed for the
    batch only) against the contract. Raises :class:`ContractError` listing every difference."""
    problems = []
    if list(inputs) != [INPUT_NAME]:
        problems.append(f"inputs are {list(inputs)}, expected exactly ['{INPUT_NAME}']")
    elif not _dims_match(list(inputs[INPUT_NAME])[1:], INPUT_SHAPE) or len(inputs[INPUT_NAME]) != 4:
        problems.append(f"input '{INPUT_NAME}' has shape {list(inputs[INPUT_NAME])}, "
                        f"expected [N, {', '.join(map(str, INPUT_SHAPE))}]")
    missing = [n for n in OUTPUT_NAMES if n not in outputs]
    if missing:
        problems.append(f"missing outputs {missing} (found {list(outputs)})")
    for name in OUTPUT_NAMES:
        if name in outputs:
            shape = list(outputs[name])
            if len(shape) != len(OUTPUT_SHAPES[name]) + 1 or not _dims_match(shape[1:], OUTPUT_SHAPES[name]):
                problems.append(f"output '{name}' has shape {shape}, expected "
                                f"[N, {', '.join(map(str, OUTPUT_SHAPES[name]))}]")
    if problems:
        raise ContractError(f"{source} does not match the PARE backend contract: " + "; ".join(problems))


def run_in_chunks(run: Callable[[torch.Tensor], Dict[str, torch.Tensor]], images: torch.Tensor,
                  max_batch: Optional[int]) -> Dict[str, torch.Tensor]:
    """``run`` on consecutive slices of at most ``max_batch`` images [N,3,224,224], outputs
    concatenated along the batch axis (``max_batch`` None or ≥ N: one call)."""
    n = images.shape[0]
    if not max_batch or n <= max_batch:
        return run(images)
    chunks = [run(images[i:i + max_batch]) for i in range(0, n, max_batch)]
    return {name: torch.cat([chunk[name] for chunk in chunks]) for name in chunks[0]}
