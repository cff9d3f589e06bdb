"""Multi-process training with torch.distributed: process group, negatives gathered with gradients.

Each process embeds its slice of the global batch; documents are all-gathered *with* gradients
(``torch.distributed.nn.functional.all_gather``), so every query is scored against the documents of
the whole global batch. Gradients are averaged across processes by one flat all-reduce after the
backward pass(es) instead of DDP hooks, which keeps gradient caching (several backward calls per
step) exact and simple. Works under ``torchrun`` and ``accelerate launch``, gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1

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


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group that torchrun/accelerate describe in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size())


def gather_with_grad(x: torch.Tensor, ctx: DistContext) -> tuple[torch.Tensor, int]:
    """(n_local, D) -> (n_global, D) and where this process's rows start.

    Processes may hold different numbers of rows (e.g. a different count of hard negatives), so
    rows are padded to the largest count, gathered, and the padding dropped. The gradient of every
    gathered row flows back to the process that produced it.
    """
    if not ctx.enabled:
        return x, 0
    from torch.distributed.nn.functional import all_gather

    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = torch.cat([x, x.new_zeros(longest - x.shape[0], *x.shape[1:])]) if x.shape[0] < longest else x
    parts = all_gather(padded)  # world x (longest, D), differentiable
    out = torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])  # (n_global, D)
    return out, sum(counts[: ctx.rank])


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
