"""Contrastive objectives: supervised InfoNCE on pairs and SimCSE on plain text, with the in-batch
false negatives of a pair batch masked (``pair_documents``, ``batch_false_negatives``; distillation
uses them too)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

from ...attention import restore_attention_dropout, set_attention_dropout
from ...embedder import Embedder
from ...errors import ConfigError
from ..distributed import DistContext, gather_rows, gather_with_grad
from ..losses import false_negative_mask, info_nce, text_ids
from .base import Objective, StepResult
from .registry import register

if TYPE_CHECKING:
    from ..config import DataSpec, StageConfig, TrainConfig
    from ..data import Record

log = logging.getLogger(__name__)


def pair_documents(records: list[Record], hard_negatives: int) -> tuple[list[str], list[str | None]]:
    """The documents of a pair batch: every positive, then up to ``hard_negatives`` per query; and per
    document the query it answers (None for hard negatives), from which false negatives are found."""
    docs: list[str] = [r.positive for r in records]  # type: ignore[misc]
    owners: list[str | None] = [r.query for r in records]
    positives = set(docs)
    for r in records:
        # a neighbour verse can be another query's positive: as a negative it would be a false one
        extra = [n for n in r.negatives[:hard_negatives] if n not in positives]
        docs.extend(extra)
        owners.extend([None] * len(extra))
    return docs, owners


def batch_false_negatives(
    queries: list[str], positives: list[str], docs: list[str], owners: list[str | None], ctx: DistContext
) -> tuple[torch.Tensor, int]:
    """(B, N_global) mask of the documents, gathered from every process, that answer each local query
    too (see ``losses.false_negative_mask``), and where this process's documents start."""
    doc_ids = gather_rows(text_ids(docs), ctx)  # type: ignore[arg-type]
    owner_ids = gather_rows(text_ids(owners), ctx)
    offset = 0
    if ctx.enabled:
        counts = gather_rows(torch.tensor([len(docs)]), ctx)
        offset = int(counts[: ctx.rank].sum())
    mask = false_negative_mask(text_ids(queries), text_ids(positives), doc_ids, owner_ids, offset)  # type: ignore[arg-type]
    return mask, offset


class _Contrastive(Objective):
    """Shared by supervised InfoNCE and SimCSE: embed two groups, score group 0 against group 1."""

    def groups(
        self, records: list[Record], spec: DataSpec
    ) -> tuple[list[str], str | None, list[str], list[str | None]]:
        """Queries, their instruction, documents (positives first, in query order) and each document's query."""
        raise NotImplementedError

    def plan(self, records: list[Record], spec: DataSpec) -> list[tuple[list[str], str | None]]:
        q_texts, instruction, d_texts, _ = self.groups(records, spec)
        return [(q_texts, instruction), (d_texts, None)]

    def step(self, records: list[Record], spec: DataSpec, step: int) -> StepResult:
        q_texts, instruction, d_texts, owners = self.groups(records, spec)
        temperature = self.stage.temperature
        mask, _ = batch_false_negatives(q_texts, d_texts[: len(q_texts)], d_texts, owners, self.ctx)
        mask = mask.to(self.device)

        def loss_fn(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
            d_all, offset = gather_with_grad(d, self.ctx)  # (N_global, D)
            return info_nce(q, d_all, temperature, offset, mask)

        loss, tokens = self.embed_grouped([(q_texts, instruction), (d_texts, None)], loss_fn)
        return StepResult(loss, {self.name: loss.item()}, tokens)


@register
class Contrastive(_Contrastive):
    """Supervised InfoNCE: in-batch negatives + hard negatives; the instruction goes on queries only.

    Documents that answer a query too (the same positive text, or the positive of another query
    with the same text, as when one definition is the query of several examples) are left out
    of its negatives, across processes as well.
    """

    name = "contrastive"
    parts = ("contrastive",)

    def groups(
        self, records: list[Record], spec: DataSpec
    ) -> tuple[list[str], str | None, list[str], list[str | None]]:
        docs, owners = pair_documents(records, self.stage.hard_negatives)
        return [r.query for r in records], spec.instruction, docs, owners  # type: ignore[return-value]


@register
class SimCSE(_Contrastive):
    """Unsupervised SimCSE: the same texts twice; only dropout makes the two views differ."""

    name = "simcse"
    kind = "text"
    parts = ("simcse",)

    @classmethod
    def check_run(cls, stage: StageConfig, cfg: TrainConfig, where: str) -> None:
        if stage.dropout is None and not cfg.lora.dropout:
            log.warning("%s: SimCSE without dropout (stage dropout unset, LoRA dropout 0): the views match", where)

    def __init__(self, emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> None:
        super().__init__(emb, stage, ctx, seed)
        self._old_dropout: dict[nn.Module, float] = {}
        self._dropout_set = False

    def groups(
        self, records: list[Record], spec: DataSpec
    ) -> tuple[list[str], str | None, list[str], list[str | None]]:
        texts = [r.text for r in records]  # a text drawn twice is masked: its other copy is no negative
        return texts, None, texts, texts  # type: ignore[return-value]

    def step(self, records: list[Record], spec: DataSpec, step: int) -> StepResult:
        if self.stage.dropout is not None and not self._dropout_set:
            self._old_dropout = set_attention_dropout(self.emb.backbone, self.stage.dropout)
            if not self._old_dropout:
                raise ConfigError(
                    f"stage '{self.stage.name}': dropout {self.stage.dropout} was asked for, but the backbone has no "
                    "attention layer with an 'attention_dropout' setting"
                )
            self._dropout_set = True
        return super().step(records, spec, step)

    def close(self) -> None:
        restore_attention_dropout(self._old_dropout)
        self._old_dropout = {}
        self._dropout_set = False
