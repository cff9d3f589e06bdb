"""Multi-process training with torch.distributed: process group, negatives gathered with gradients.

Each process embeds its slice of the global batch; documents are all-gathered *with* gradients
(``_GatherRows``), so every query is scored against the documents of the whole global batch. That is
our own few lines rather than ``torch.distributed.nn.functional.all_gather``: those functions capture
the process group in their default arguments when first imported after it exists, so the group
outlives ``destroy_process_group`` and is torn down at interpreter exit, where gloo may abort.
Gradients are averaged across processes by one flat all-reduce after the backward pass(es) instead of
DDP hooks, which keeps gradient caching (several backward calls per step) exact and simple. Works
under ``torchrun`` and ``accelerate launch``, gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

if dist.is_available() and not dist.is_initialized():
    # torch.distributed.nn's functions take ``group=group.WORLD`` as a default argument, evaluated when
    # the module is imported. Imported after the group exists (torch does it lazily, e.g. with sharded
    # tensors when a model loads), they would hold the group past destroy_process_group, to be torn down
    # at interpreter exit, where gloo can abort. Imported now, before any group, they hold None.
    import torch.distributed.nn  # noqa: F401


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # this context created the process group, so it must destroy it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This process's slice of a global batch of ``n`` (sizes differ by at most one)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self, clean: bool = True) -> None:
        """Destroy the process group this context created, while the interpreter is fully alive.

        Why: a group left for interpreter exit is torn down during finalization, when gloo's worker
        threads may still hold work objects with tensors that point into Python; releasing them then
        needs the GIL of a dying interpreter, and the process aborts (SIGABRT, "terminate called
        without an active exception") after the run has saved its model. ``clean`` (the run ended
        normally) first waits at a barrier so no process leaves while another is still in a
        collective. After an error the other processes may never reach that barrier, so there is
        none; gloo's destroy is local to the process, NCCL's may wait on its peers, so an NCCL group
        is left to the launcher after an error. Idempotent.
        """
        if not (self.owns_group and dist.is_available() and dist.is_initialized()):
            return
        backend = str(dist.get_backend())
        try:
            if clean:
                dist.barrier()
            elif backend != "gloo":
                return
            dist.destroy_process_group()
        except Exception as e:  # a peer already gone: nothing left to wait for
            log.warning("process group teardown: %s", e)


def launched_world_size() -> int:
    """The processes torchrun/accelerate started for this run (``WORLD_SIZE``; 1 without a launcher),
    known before the process group is joined, so a run's preflight can check batch sizes against it."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group that torchrun/accelerate describe in the environment, if any."""
    world = launched_world_size()
    if world <= 1:
        return DistContext()
    owns = not dist.is_initialized()  # a group made by the caller (accelerate, a test) stays theirs
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), owns)


def gather_with_grad(x: torch.Tensor, ctx: DistContext) -> tuple[torch.Tensor, int]:
    """(n_local, D) -> (n_global, D) and where this process's rows start.

    Processes may hold different numbers of rows (e.g. a different count of hard negatives), so
    rows are padded to the largest count, gathered, and the padding dropped. The gradient of every
    gathered row flows back to the process that produced it.
    """
    if not ctx.enabled:
        return x, 0
    counts, padded = _pad_to_longest(x, ctx)
    parts = _GatherRows.apply(padded.contiguous(), ctx.rank, ctx.world_size)  # (world, longest, D), differentiable
    out = torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])  # (n_global, D)
    return out, sum(counts[: ctx.rank])


class _GatherRows(torch.autograd.Function):
    """All-gather whose backward sends each process the summed gradient of its own rows.

    Every process's loss uses every gathered row, so the gradient of this process's rows is the sum,
    over processes, of the gradient each computed for them: an all-reduce of the stacked gradients
    (gloo has no reduce-scatter), or a reduce-scatter on NCCL. No group object is kept anywhere.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, rank: int, world: int) -> torch.Tensor:  # (n, D) -> (world, n, D)
        ctx.rank, ctx.world = rank, world
        out = x.new_empty(world, *x.shape)
        dist.all_gather(list(out.unbind(0)), x)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # (world, n, D) -> (n, D)
        grad = grad.contiguous()
        if dist.get_backend() == "nccl":
            mine = grad.new_empty(grad.shape[1:])
            dist.reduce_scatter_tensor(mine, grad.reshape(-1, *grad.shape[2:]))
            return mine, None, None
        dist.all_reduce(grad)
        return grad[ctx.rank].clone(), None, None


def _pad_to_longest(x: torch.Tensor, ctx: DistContext) -> tuple[list[int], torch.Tensor]:
    """Every process's row count, and ``x`` padded with zero rows to the largest: (longest, ...)."""
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = torch.cat([x, x.new_zeros(longest - x.shape[0], *x.shape[1:])]) if x.shape[0] < longest else x
    return counts, padded


def gather_rows(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """(n_local, ...) -> (n_global, ...) without gradients (ids, teacher vectors); rows may differ in count."""
    if not ctx.enabled:
        return x
    counts, padded = _pad_to_longest(x, ctx)
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])


def average_gradients(params: list[torch.nn.Parameter], ctx: DistContext) -> None:
    """Average .grad of ``params`` over processes with one flat all-reduce.

    A parameter that has no gradient on any process (e.g. the LM head under a contrastive loss)
    keeps ``.grad = None``, as in a single-process run, so the optimizer skips it (no weight decay,
    no state) instead of stepping on a gradient of zeros. One missing on some processes only counts
    as zero there.
    """
    if not ctx.enabled or not params:
        return
    device = params[0].device
    used = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=device)
    dist.all_reduce(used)  # how many processes hold each parameter's gradient
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for p, g, count in zip(params, grads, used.tolist(), strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).to(p.dtype).clone() if count else None
        offset += n


def all_mean(value: float, ctx: DistContext, device: torch.device) -> float:
    """A logged number averaged over processes."""
    if not ctx.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def all_true(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """Whether ``flag`` holds on every process (a collective: every process calls it)."""
    if not ctx.enabled:
        return flag
    ok = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)
