"""The PARE two-stage recipe (§10.2) as one config: ``stages`` in :class:`TrainConfig`.

    stages:
      - {name: stage1, part_supervision: true,  epochs: 200, lr: 2.0e-4}
      - {name: stage2, part_supervision: false, epochs: 50,  lr: 5.0e-5, datasets: [...]}

Each entry overrides fields of the top-level config for that stage; stage k runs in
``output_dir/<name>`` and, unless it sets ``init_checkpoint``, starts from the final
checkpoint of stage k−1. Rerunning the same command resumes: finished stages return their
final checkpoint at once, the interrupted one continues where it stopped.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional

from . import distributed as dist_utils
from .config import TrainConfig, save_config
from .loop import train_stage


def stage_configs(config: TrainConfig) -> list:
    """[(name, TrainConfig)] of the stages (init_checkpoint of k>0 filled in by :func:`run`)."""
    out = []
    for k, overrides in enumerate(config.stages):
        overrides = dict(overrides)
        name = str(overrides.pop("name", f"stage{k + 1}"))
        stage = dataclasses.replace(config, stages=[],
                                    output_dir=str(Path(config.output_dir) / name), **overrides)
        out.append((name, stage))
    return out


def run(config: TrainConfig, ctx: Optional[dist_utils.DistContext] = None) -> Dict[str, Any]:
    """Train ``config``: one stage, or each of ``config.stages`` in turn. Returns the last
    stage's result plus ``stages``: {name: final checkpoint}."""
    ctx = ctx or dist_utils.setup(config.device, config.dist_backend)
    if not config.stages:
        return train_stage(config, ctx)
    if ctx.is_main:
        save_config(config, Path(config.output_dir) / "recipe.yaml")
    previous, result, done = None, {}, {}
    for name, stage in stage_configs(config):
        if previous is not None and not stage.init_checkpoint:
            stage = dataclasses.replace(stage, init_checkpoint=str(previous))
        result = train_stage(stage, ctx)
        previous = done[name] = result["checkpoint"]
    result["stages"] = done
    return result
