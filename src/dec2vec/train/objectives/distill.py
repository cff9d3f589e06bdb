"""Distillation: the student's in-batch similarity structure matched to a teacher's on the same texts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ...embedder import Embedder
from ...errors import ConfigError
from ..distributed import DistContext, gather_rows, gather_with_grad
from ..losses import similarity_kl, similarity_mse, soft_info_nce
from .base import Objective, StepResult
from .contrastive import batch_false_negatives, pair_documents
from .registry import register

if TYPE_CHECKING:
    from ..config import DataSpec, StageConfig, TrainConfig
    from ..data import Record


@register
class Distill(Objective):
    """Match the student's in-batch similarity structure to a teacher's on the same texts.

    A batch of plain texts is one group; a batch of pairs is queries (with the source's
    instruction, as in contrastive training) plus documents (positives, then hard negatives). The
    loss is a weighted sum of parts, each logged:

    - ``distill_kl``: KL(teacher || student) of each text's softmaxed cosine row over the global
      batch (the teacher's ranking of neighbours; student and teacher widths may differ);
    - ``distill_mse``: squared difference of the cosine matrices (their scale too);
    - ``distill_nce`` (pairs only): InfoNCE query -> documents whose target mixes the one-hot
      positive with the teacher's softmaxed scores (``soft_labels``), false negatives masked.

    The teacher sees the bare texts, never the instruction: it was not trained with one. Its
    vectors come from the on-disk cache (``train.teacher``), filled ahead by ``prepare``.
    """

    name = "distill"
    kind = "any"
    parts = ("distill_kl", "distill_mse", "distill_nce")  # those with a weight are logged
    prepares_ahead = True  # the teacher encodes every text of the stage once, ahead of training

    @classmethod
    def check_config(cls, stage: StageConfig) -> None:
        weights = (stage.distill_kl, stage.distill_mse, stage.distill_nce)
        if sum(weights) == 0:
            raise ConfigError(f"distill_kl, distill_mse, distill_nce must be >= 0 and not all 0, got {weights}")

    @classmethod
    def check_run(cls, stage: StageConfig, cfg: TrainConfig, where: str) -> None:
        from ... import models

        if not isinstance(models.weights_folder(stage.teacher), Path):
            raise ConfigError(f"{where}: teacher '{stage.teacher}' must be a local folder or a registered model")

    def __init__(self, emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> None:
        super().__init__(emb, stage, ctx, seed)
        from ..teacher import TeacherCache

        self.teacher = TeacherCache(
            stage.teacher, max_length=stage.teacher_max_length, long_texts=stage.teacher_long_texts
        )

    def texts_of(self, records: list[Record], hard_negatives: int) -> list[str]:
        """Every text the teacher must embed for a batch of records."""
        if records[0].text is not None:
            return [r.text for r in records]  # type: ignore[misc]
        docs, _ = pair_documents(records, hard_negatives)
        return [*(r.query for r in records), *docs]  # type: ignore[misc]

    def prepare(self, texts: list[str]) -> None:
        """Encode (once, resumably, with a progress bar) every text of the stage ahead of training."""
        self.teacher.ensure(texts, progress=True)

    def prepared(self) -> None:
        self.teacher.reload()  # what the main process wrote

    def step(self, records: list[Record], spec: DataSpec, step: int) -> StepResult:
        st = self.stage
        pairs = records[0].text is None
        if not pairs and not (st.distill_kl or st.distill_mse):
            raise ConfigError(
                f"stage '{st.name}': source '{spec.name}' holds plain text, which only distill_kl and distill_mse "
                "use; give one of them a weight (distill_nce needs query/positive pairs)"
            )
        texts = self.texts_of(records, st.hard_negatives)
        teacher = self.teacher.embeddings(texts).to(self.device)  # (n, Dt)
        parts: dict[str, torch.Tensor] = {}
        if pairs:
            b = len(records)
            q_texts, d_texts = texts[:b], texts[b:]
            _, owners = pair_documents(records, st.hard_negatives)
            mask, _ = batch_false_negatives(q_texts, d_texts[:b], d_texts, owners, self.ctx)
            mask = mask.to(self.device)
            tq, td = teacher[:b], teacher[b:]
            td_all = gather_rows(td, self.ctx)  # (N_global, Dt)
            groups = [(q_texts, spec.instruction), (d_texts, None)]
        else:
            groups = [(texts, None)]
        t_all = gather_rows(teacher, self.ctx)  # (n_global, Dt), every process's [queries; documents] block

        def loss_fn(*reps: torch.Tensor) -> torch.Tensor:
            s = torch.cat(reps)  # (n, Ds), in the order of ``texts``
            s_all, offset = gather_with_grad(s, self.ctx)  # (n_global, Ds)
            total = s.new_zeros((), dtype=torch.float32)
            if st.distill_kl:
                parts["distill_kl"] = similarity_kl(s, s_all, teacher, t_all, st.distill_temperature, offset)
                total = total + st.distill_kl * parts["distill_kl"]
            if st.distill_mse:
                parts["distill_mse"] = similarity_mse(s, s_all, teacher, t_all, offset)
                total = total + st.distill_mse * parts["distill_mse"]
            if pairs and st.distill_nce:
                q, d = reps
                d_all, d_offset = gather_with_grad(d, self.ctx)
                parts["distill_nce"] = soft_info_nce(
                    q, d_all, tq, td_all, st.temperature, st.distill_temperature, st.soft_labels, d_offset, mask
                )
                total = total + st.distill_nce * parts["distill_nce"]
            return total

        loss, tokens = self.embed_grouped(groups, loss_fn)
        return StepResult(loss, {k: float(v.detach()) for k, v in parts.items()}, tokens)
