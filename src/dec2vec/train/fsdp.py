"""Full fine-tuning past one device's memory: PyTorch FSDP2 (``fully_shard``) under torchrun.

``distributed: fsdp`` shards every parameter, its gradient and its AdamW state over the processes:
each decoder layer is one FSDP unit (its weights gathered just before it runs, freed after), and the
whole embedder (embeddings, light encoder, heads) is the root unit. The step itself is unchanged:
each process embeds its shard of the global batch, negatives are gathered with gradients as under
DDP, and FSDP's reduce-scatter averages the gradients (so ``average_gradients`` is skipped).

Checkpoints stay atomic folders (``checkpoint.py``) and add ``sharded/``: model and optimizer state
written by every process through ``torch.distributed.checkpoint`` (each its own shard; a resume
needs the same process count, as under DDP, for the per-process RNG streams). The final model is
gathered to the main process and saved as usual.

Refused when the config is built (``config._check_fsdp``), with the reason: LoRA (adapters are
small; DDP trains them), in-run validation (it runs on the main process alone, but every forward of
a sharded model needs every process), a least-squares projector start, and (in the run's preflight,
which reads the objective registry) objectives that call the backbone's parts outside the model's
forward (``Objective.runs_forward_only``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError
from .speed import decoder_layers

if TYPE_CHECKING:
    from ..embedder import Embedder
    from .checkpoint import TrainingState
    from .distributed import DistContext

SHARDED = "sharded"


def shard_model(emb: Embedder) -> None:
    """Shard ``emb`` in place: one FSDP unit per decoder layer, the rest in the root unit."""
    from torch.distributed.fsdp import fully_shard

    for layer in decoder_layers(emb.backbone):
        fully_shard(layer)
    fully_shard(emb)


def full_norm(norm: torch.Tensor) -> torch.Tensor:
    """``clip_grad_norm_``'s total norm as a plain tensor (a DTensor when the parameters are sharded)."""
    full = getattr(norm, "full_tensor", None)
    return full() if callable(full) else norm


def _local_finite(tree: nn.Module) -> bool:
    for p in tree.parameters():
        local = getattr(p, "to_local", None)
        t = local() if callable(local) else p
        if not bool(torch.isfinite(t.detach()).all()):
            return False
    return True


def save_sharded(
    root: Path,
    state: TrainingState,
    tree: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    keep: int,
    rngs: list[dict[str, torch.Tensor]],
    ctx: DistContext,
    device: torch.device,
    first: Callable[[], None],
) -> None:
    """Every process writes its shard of ``tree``'s and ``optimizer``'s state (a collective); the main
    process then runs ``first`` and moves them into an atomic checkpoint folder with the counters."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    from .checkpoint import CheckpointError, save_checkpoint
    from .distributed import all_true

    if not all_true(_local_finite(tree), ctx, device):
        raise CheckpointError(f"refusing to checkpoint step {state.global_step}: non-finite parameter values")
    staging = root / f".{SHARDED}-{state.global_step:07d}"
    if ctx.is_main:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    dist.barrier()
    model_sd, optim_sd = get_state_dict(tree, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(staging))
    dist.barrier()
    error: BaseException | None = None
    if ctx.is_main:
        try:
            first()
            save_checkpoint(root, state, {}, None, scheduler, keep, rngs, sharded=staging)
        except Exception as e:
            error = e
    if not all_true(error is None, ctx, device) and error is None:
        raise CheckpointError("the main process failed to write the checkpoint; see its error")
    if error is not None:
        raise error


def load_sharded(path: Path, tree: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Put a sharded checkpoint's model and optimizer state back (every process reads its own shard)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

    folder = path / SHARDED
    if not (folder / ".metadata").is_file():
        raise ConfigError(f"{path} holds no sharded state: it was written by a distributed: ddp run")
    model_sd, optim_sd = get_state_dict(tree, optimizer)
    # a parameter that never had a gradient (e.g. an LM head under a contrastive loss) had no optimizer
    # state when the checkpoint was written, and must have none now: the run continues as it would have
    saved = dcp.FileSystemReader(str(folder)).read_metadata().state_dict_metadata
    optim_sd["state"] = {
        name: value
        for name, value in optim_sd["state"].items()
        if any(key.startswith(f"optim.state.{name}.") for key in saved)
    }
    both = {"model": model_sd, "optim": optim_sd}
    dcp.load(both, checkpoint_id=str(folder))
    # not strict: for the optimizer state left out above (every model key was loaded, or dcp.load raised)
    options = StateDictOptions(strict=False)
    set_state_dict(tree, optimizer, model_state_dict=both["model"], optim_state_dict=both["optim"], options=options)


def gather_for_export(emb: Embedder, fresh: Callable[[], Embedder], ctx: DistContext) -> Embedder | None:
    """The trained model, whole, on the main process's CPU (None on the others): ``fresh()`` (an unsharded
    embedder of the same config, on the CPU) with the gathered weights (a collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(emb, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not ctx.is_main:
        return None
    whole = fresh()
    whole.load_state_dict(full)
    return whole
