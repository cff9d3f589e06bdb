"""Gradient caching (GradCache, Gao et al. 2021): a large contrastive batch in small-batch memory.

The InfoNCE loss couples every query with every document, so the batch cannot simply be split
into micro-batches. Instead: (1) embed all chunks without building graphs; (2) compute the loss
on those embeddings as leaf tensors and backpropagate only to them, which gives d loss / d emb;
(3) re-run each chunk with a graph and backpropagate the cached embedding gradient through it.
Peak activation memory is one chunk's, and the parameter gradients equal the full-batch ones.
Dropout must draw the same masks in (1) and (3), so each chunk's RNG state is saved and replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

EmbedFn = Callable[[Any], torch.Tensor]  # one chunk of inputs -> (b, D)


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def cached_backward(
    embed: EmbedFn,
    groups: Sequence[Sequence[Any]],
    loss_fn: Callable[..., torch.Tensor],
    device: torch.device,
) -> torch.Tensor:
    """Forward+backward of ``loss_fn(emb_group_0, emb_group_1, ...)`` chunk by chunk; returns the loss.

    ``groups`` holds, per embedding group (queries, documents...), its list of input chunks;
    ``embed`` maps one chunk to its (b, D) embeddings. Parameter .grad is accumulated as if
    ``loss_fn`` had been back-propagated through the un-chunked computation.
    """
    states: list[list[tuple[torch.Tensor, torch.Tensor | None]]] = []
    reps: list[torch.Tensor] = []
    with torch.no_grad():
        for chunks in groups:
            group_states, outs = [], []
            for chunk in chunks:
                group_states.append(_rng_state(device))
                outs.append(embed(chunk))
            states.append(group_states)
            reps.append(torch.cat(outs).detach().requires_grad_(True))  # (n_group, D) leaf
    after = _rng_state(device)
    loss = loss_fn(*reps)
    loss.backward()  # only to the leaf embeddings: d loss / d reps
    for chunks, group_states, rep in zip(groups, states, reps, strict=True):
        assert rep.grad is not None
        start = 0
        for chunk, state in zip(chunks, group_states, strict=True):
            _set_rng_state(state, device)
            out = embed(chunk)  # (b, D), now with a graph; same dropout masks as before
            grad = rep.grad[start : start + out.shape[0]]
            start += out.shape[0]
            torch.autograd.backward(out, grad.to(out.dtype))
    _set_rng_state(after, device)  # the RNG moves on exactly as after the first pass
    return loss.detach()
