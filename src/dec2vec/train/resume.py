"""Resuming a run: which checkpoint to continue from, whether this config may continue it, and putting
its parameters back; and the per-process RNG states a checkpoint stores so that a resumed run draws
what the uninterrupted one would have.

The checkpoint format itself is ``checkpoint.py``'s; this module decides what a run does with one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..foundations.files import write_atomic
from .checkpoint import TrainingState, latest_checkpoint, load_checkpoint, rng_state
from .config import TrainConfig
from .distributed import DistContext
from .fingerprint import config_fingerprint

log = logging.getLogger(__name__)

BUDGET_FILE = "config.before-budget-change.json"  # the checkpoint's config, kept when --resume changes the steps


@dataclass
class Restored:
    """A checkpoint read back: its counters and position, trained parameters and optimizer state."""

    path: Path
    state: TrainingState
    params: dict[str, torch.Tensor]
    optim: dict[str, Any]  # {"optimizer", "scheduler", "rng"}


def find_restore(
    ckpt_dir: Path, out: Path, cfg: TrainConfig, fingerprint: str, device: torch.device, is_main: bool
) -> Restored | None:
    """The latest checkpoint of the run in ``out``, if this config may continue it (else ``ConfigError``);
    None, with a warning, when there is none."""
    path = latest_checkpoint(ckpt_dir)
    if path is None:
        log.warning("--resume: no checkpoint in %s; starting from the beginning", ckpt_dir)
        return None
    state, params, optim = load_checkpoint(path, device)
    if state.fingerprint != fingerprint:
        if not budget_change_only(out, cfg, state, fingerprint, is_main):
            raise ConfigError(
                f"{path} was written by a run with a different config (fingerprint {state.fingerprint}, now "
                f"{fingerprint}); resume with the same config (only the step counts of the current "
                "and later stages may change) or start a new output_dir"
            )
        state.fingerprint = fingerprint  # later resumes check against the new budget
    return Restored(path, state, params, optim)


def budget_change_only(out: Path, cfg: TrainConfig, state: TrainingState, fingerprint: str, is_main: bool) -> bool:
    """Whether the new config differs from the checkpoint's only in the step counts of the current and
    later stages, each still ahead of where the run stands: a run's budget shortened or lengthened on
    --resume (``--set stages.0.steps=N``). The checkpoint's config is the run's saved config.json when
    its fingerprint matches the checkpoint's. The learning-rate schedule then decays to 0 at the new end
    from the resumed step on; the data order does not depend on the step count."""
    for saved in (out / "config.json", out / BUDGET_FILE):  # the latter: a change not yet checkpointed
        try:
            old = TrainConfig.from_dict(json.loads(saved.read_text()))
        except (OSError, ValueError, ConfigError):
            continue
        if config_fingerprint(old) == state.fingerprint:
            break
    else:
        return False
    if len(old.stages) != len(cfg.stages):
        return False
    was, now = old.to_dict(), cfg.to_dict()
    changes = []
    for i, (a, b) in enumerate(zip(was["stages"], now["stages"], strict=True)):
        if a["steps"] == b["steps"]:
            continue
        if i < state.stage or (i == state.stage and b["steps"] <= state.stage_step):
            return False  # a finished stage, or an end the run has already passed
        changes.append(f"stage {i} ({b.get('name') or b['objective']}): {a['steps']} -> {b['steps']} steps")
        a["steps"] = b["steps"]
    if not changes or config_fingerprint(TrainConfig.from_dict(was)) != fingerprint:
        return False
    if is_main and saved.name != BUDGET_FILE:
        write_atomic(out / BUDGET_FILE, json.dumps(old.to_dict(), indent=2) + "\n", durable=True)
    log.warning("--resume with a new budget: %s; the learning rate decays to 0 at the new end", "; ".join(changes))
    return True


def load_params(model: nn.Module, params: dict[str, nn.Parameter] | None, saved: dict[str, torch.Tensor]) -> None:
    """Copy saved values into the model's parameters (named ``model.*``) and ``params`` (the stage's
    trainable ones, objective modules included). Without ``params`` (earlier stages' results, put back
    before the current stage is built) names the model lacks are skipped; with them they are an error."""
    tree = dict(nn.ModuleDict({"model": model}).named_parameters())
    if params is not None:
        tree.update(params)
    missing = [n for n in saved if n not in tree]
    for name, value in saved.items():
        if name in tree:
            with torch.no_grad():
                tree[name].copy_(value)
    if missing and params is not None:
        raise ConfigError(f"checkpoint parameters not in this model: {missing[:3]}")


def rng_states(ctx: DistContext, device: torch.device) -> list[dict[str, Any]]:
    """The RNG states to checkpoint: this process's, or under several processes every process's own
    (gathered; a collective, so every process calls it), so a resumed run continues each stream."""
    rngs = [rng_state(device)]
    if ctx.enabled:
        import torch.distributed as dist

        rngs = [None] * ctx.world_size  # type: ignore[list-item]
        dist.all_gather_object(rngs, {k: v.cpu() for k, v in rng_state(device).items()})
    return rngs
