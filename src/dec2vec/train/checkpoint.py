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
from ..foundations.files import fsync_path, write_atomic

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
    bad_lines: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> source -> skipped lines


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's RNG state: CPU, and the CUDA generator of its own device only."""
    out = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def clean_stale(root: Path) -> None:
    """Remove temporary folders left by a run killed while writing a checkpoint."""
    for tmp in [*root.glob(".step-*"), *root.glob(".sharded-*")]:
        shutil.rmtree(tmp, ignore_errors=True)


def save_checkpoint(
    root: Path,
    state: TrainingState,
    params: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    keep: int = 2,
    rng: list[dict[str, torch.Tensor]] | None = None,
    sharded: Path | None = None,
) -> Path:
    """Write ``root/step-N`` atomically, point ``root/latest`` at it, and drop old ones beyond ``keep``.

    ``rng`` holds every process's RNG state (index = rank); by default this process's CPU state.
    ``sharded``: a folder of sharded model and optimizer state (``fsdp.save_sharded``), moved in as
    ``sharded/``; ``params`` and ``optimizer`` are then empty and None.
    Files and folders are fsynced before ``latest`` moves, so even a power cut cannot leave
    ``latest`` pointing at a folder of truncated files.
    """
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
        optim = optimizer.state_dict() if optimizer is not None else None
        torch.save({"optimizer": optim, "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
        if sharded is not None:
            os.replace(sharded, tmp / "sharded")
            for f in (tmp / "sharded").iterdir():
                fsync_path(f)
            fsync_path(tmp / "sharded")
        per_rank = rng or [rng_state(torch.device("cpu"))]
        save_file({f"rank{r}.{k}": v for r, s in enumerate(per_rank) for k, v in s.items()}, tmp / "rng.safetensors")
        meta = {**state.__dict__, "python_random": repr(random.getstate())}
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        for f in tmp.iterdir():
            fsync_path(f)
        fsync_path(tmp)
        if final.exists():  # a re-run of the same step: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_path(root)
    except Exception as e:  # OSError, safetensors' own errors...: never a partial checkpoint, always a message
        shutil.rmtree(tmp, ignore_errors=True)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        raise CheckpointError(
            f"could not write the checkpoint of step {state.global_step} in {root} ({reason}); "
            "the previous checkpoint is intact"
        ) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # durable (fsync): ``latest`` must never name data still in the page cache; every file of a run is
    write_atomic(root / LATEST, name + "\n", durable=True)
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep)]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _complete(path: Path) -> bool:
    names = ("state.json", "trainable.safetensors", "optimizer.pt", "rng.safetensors")
    if (path / "sharded").exists() and not (path / "sharded" / ".metadata").is_file():
        return False
    return all((path / n).is_file() and (path / n).stat().st_size > 0 for n in names)


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint ``latest`` names, or else the newest complete ``step-*`` (``latest`` lost)."""
    pointer = root / LATEST
    if pointer.is_file():
        path = root / pointer.read_text().strip()
        if _complete(path):
            return path
    steps = sorted((p for p in root.glob("step-*") if p.is_dir() and _complete(p)), reverse=True)
    return steps[0] if steps else None


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


def restore_rng(rng: dict[str, Any], rank: int, device: torch.device) -> None:
    """Put back this process's own RNG state (saved per rank)."""
    import ast

    tensors = rng["tensors"]
    key = f"rank{rank}.torch"
    if key not in tensors:
        raise CheckpointError(f"the checkpoint holds no RNG state for process {rank}: resume with the same processes")
    torch.set_rng_state(tensors[key])
    if device.type == "cuda" and f"rank{rank}.cuda" in tensors:
        torch.cuda.set_rng_state(tensors[f"rank{rank}.cuda"], device)
    if rng["python"]:
        random.setstate(ast.literal_eval(rng["python"]))
