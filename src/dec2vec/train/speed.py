"""How fast, and in how much memory, a training step runs; none of it changes what is computed.

- ``gradient_checkpointing``: the backbone's layers keep only their inputs in the forward pass and
  recompute the rest during backward (transformers' own ``gradient_checkpointing_enable``, non-reentrant,
  so LoRA and a frozen embedding table need no ``requires_grad`` on the inputs). Same gradients.
- ``compile``: each decoder layer is ``torch.compile``d in place (``nn.Module.compile``), so the state
  dict, LoRA and checkpoints see the same module tree. Per layer rather than the whole decoder: one
  small graph reused by every layer, and mask building stays eager.
- ``BatchesAhead``: the next step's batch is read, sharded and tokenised in a worker thread while the
  current step runs, as the encode engine's prefetcher does (tensors pinned when training on CUDA so
  the copies are non-blocking). One step ahead, never more, and the trainer waits for it before
  anything else tokenises or changes the token limit (validation, the end of a stage).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from ..embedder import Embedder
    from .config import DataSpec
    from .data import MixtureLoader, Record
    from .distributed import DistContext
    from .objectives.base import Objective


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a model: the entries of its largest ``nn.ModuleList`` (the decoder layers)."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    return list(max(lists, key=len)) if lists else []


def enable_gradient_checkpointing(emb: Embedder) -> None:
    """Recompute the backbone's layer activations in backward (transformers' own support)."""
    from ..errors import ConfigError

    model = emb.backbone
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError(f"gradient_checkpointing: {type(model).__name__} does not support it")
    # non-reentrant: gradients reach LoRA weights even when no input requires grad, and RNG state
    # (dropout) is replayed in the recomputation, so the masks match the forward pass
    kwargs = {"use_reentrant": False}
    if callable(getattr(model, "activation_checkpointing_enable", None)):  # transformers >= 5.2x's name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def compile_layers(emb: Embedder, **options: Any) -> int:
    """``torch.compile`` every decoder layer in place (dynamic shapes); returns how many."""
    options.setdefault("dynamic", True)
    layers = decoder_layers(emb.backbone)
    for layer in layers:
        layer.compile(**options)
    return len(layers)


@dataclass
class Ahead:
    """One step's batch, prepared in the worker: this process's records, the loader's position after
    drawing it (what a checkpoint of this step stores), and its inputs tokenised ahead, if planned."""

    spec: DataSpec
    records: list[Record]
    loader_state: dict[str, Any]
    skipped: dict[str, int]  # malformed lines skipped so far, per source, as of this batch
    features: dict[Any, dict[str, torch.Tensor]] = field(default_factory=dict)


class BatchesAhead:
    """Step ``n``'s batch is prepared while step ``n - 1`` runs (``enabled``), or when asked (not).

    ``prepare(step)`` is the whole work for one step: the trainer passes the loader, the shard and
    the objective's tokenisation plan. ``wait()`` lets a step's caller be sure the worker is idle.
    """

    def __init__(self, prepare: Callable[[int], Ahead], first: int, last: int, enabled: bool) -> None:
        self._prepare, self._last, self.enabled = prepare, last, enabled
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dec2vec-train-ahead") if enabled else None
        self._pending: tuple[int, Future[Ahead]] | None = None
        self._submit(first)

    def _submit(self, step: int) -> None:
        if self._pool is not None and step < self._last:
            self._pending = (step, self._pool.submit(self._prepare, step))

    def get(self, step: int) -> Ahead:
        """Step ``step``'s batch; starts preparing the next one."""
        if self._pending is None or self._pending[0] != step:
            self.wait()
            item = self._prepare(step)
        else:
            item = self._pending[1].result()
            self._pending = None
        self._submit(step + 1)
        return item

    def wait(self) -> None:
        """Let the batch in preparation finish (it stays ready for ``get``); errors surface in ``get``."""
        if self._pending is not None:
            self._pending[1].exception()

    def close(self) -> None:
        self.wait()
        self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def make_preparer(
    loader: MixtureLoader, batch_size: int, ctx: DistContext, objective: Objective, pin: bool
) -> Callable[[int], Ahead]:
    """The work for one step: draw the global batch, take this process's shard, tokenise what the
    objective plans to embed. Steps are prepared in order, one at a time, so the loader's state after
    step ``n`` is the one a checkpoint of step ``n`` must hold."""

    def prepare(step: int) -> Ahead:
        spec, records = loader.batch(step, batch_size)
        mine = records[ctx.shard(len(records))]
        item = Ahead(spec, mine, loader.state_dict(), dict(loader.skipped))
        item.features = objective.tokenize_ahead(mine, spec)  # warns of nothing: training inputs are cut
        if pin:
            item.features = {k: {n: t.pin_memory() for n, t in f.items()} for k, f in item.features.items()}
        return item

    return prepare
