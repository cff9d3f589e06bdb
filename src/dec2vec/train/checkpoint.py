"""Atomic, resumable checkpoints.

A checkpoint is a folder ``step-000123`` holding the trainable parameters (safetensors), the
optimizer and scheduler, the RNG states, the data position and the step counters. It is written
under a temporary name and renamed into place only when complete, then ``latest`` is switched by an
atomic file replace; so a kill, a full disk or a failed write leaves the previous checkpoint as it
was, and a folder that exists is whole. Parameters that are not finite are never written.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import Dec2VecError

LATEST = "latest"


class CheckpointError(Dec2VecError):
    """A checkpoint could not be written or read; the previous one is untouched."""


@dataclass
class TrainingState:
    global_step: int = 0  # optimizer steps done, over all stages
    stage: int = 0  # index of the current stage
    stage_step: int = 0  # steps done in the current stage
    fingerprint: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # MixtureLoader.state_dict() of the current stage
    bad_steps: int = 0  # non-finite losses skipped so far


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _rng_tensors() -> dict[str, torch.Tensor]:
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out[f"cuda{i}"] = torch.cuda.get_rng_state(i)
    return out


def save_checkpoint(
    root: Path,
    state: TrainingState,
    params: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    keep: int = 2,
) -> Path:
    """Write ``root/step-N`` atomically, point ``root/latest`` at it, and drop old ones beyond ``keep``."""
    from safetensors.torch import save_file

    bad = [name for name, t in params.items() if not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"refusing to checkpoint step {state.global_step}: non-finite values in {bad[:3]}")
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{state.global_step:07d}"
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in params.items()}, tmp / "trainable.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
        save_file(_rng_tensors(), tmp / "rng.safetensors")
        meta = {**state.__dict__, "python_random": repr(random.getstate())}
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        if final.exists():  # a re-run of the same step: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise CheckpointError(
                f"could not write the checkpoint of step {state.global_step} in {root} ({e.strerror or e}); "
                "the previous checkpoint is intact"
            ) from e
        raise
    write_atomic(root / LATEST, name + "\n")
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep)]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    if not (path / "state.json").is_file():
        raise CheckpointError(f"{pointer} names {path.name}, which is missing or incomplete")
    return path


def load_checkpoint(path: Path, device: torch.device) -> tuple[TrainingState, dict[str, torch.Tensor], dict[str, Any]]:
    """-> (state, trainable parameters, {"optimizer", "scheduler", "rng"}).

    RNG states are returned, not applied: the caller restores them (``restore_rng``) right before the
    first resumed step, after building modules whose default initialisation draws from the RNG.
    """
    from safetensors.torch import load_file

    meta = json.loads((path / "state.json").read_text())
    py_random = meta.pop("python_random", None)
    state = TrainingState(**meta)
    params = load_file(path / "trainable.safetensors", device=str(device))
    optim = torch.load(path / "optimizer.pt", map_location=device, weights_only=True)
    optim["rng"] = {"tensors": load_file(path / "rng.safetensors"), "python": py_random}
    return state, params, optim


def restore_rng(rng: dict[str, Any]) -> None:
    import ast

    tensors = rng["tensors"]
    torch.set_rng_state(tensors["torch"])
    for key, value in tensors.items():
        if key.startswith("cuda") and torch.cuda.is_available() and int(key[4:]) < torch.cuda.device_count():
            torch.cuda.set_rng_state(value, int(key[4:]))
    if rng["python"]:
        random.setstate(ast.literal_eval(rng["python"]))
