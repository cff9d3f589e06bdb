"""One objective per training stage: how a batch of records becomes a loss, and its backward pass.

Each objective embeds or runs the model through the public ``Embedder`` (so training sees exactly
the inputs inference builds), computes a pure loss from ``losses.py``, calls backward itself
(gradient caching needs several backward calls), and returns named parts for the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..attention import restore_attention_dropout, set_attention_dropout
from ..embedder import Embedder
from ..errors import ConfigError
from .config import DataSpec, StageConfig
from .data import Record
from .distributed import DistContext, gather_rows, gather_with_grad
from .gradcache import cached_backward
from .losses import (
    IGNORE,
    false_negative_mask,
    info_nce,
    next_token_pairs,
    similarity_kl,
    similarity_mse,
    soft_info_nce,
    text_ids,
    token_loss,
)
from .mrc import ReconstructionDecoder

Features = dict[str, torch.Tensor]


@dataclass
class StepResult:
    loss: torch.Tensor  # scalar, detached
    parts: dict[str, float] = field(default_factory=dict)
    tokens: int = 0  # real (non-pad) backbone tokens processed by this process


def mask_token_id(tokenizer: Any) -> int:
    """The tokenizer's mask token, else the first token of "_" (LLM2Vec's choice for LLMs without one)."""
    if getattr(tokenizer, "mask_token_id", None) is not None:
        return int(tokenizer.mask_token_id)
    ids = tokenizer("_", add_special_tokens=False)["input_ids"]
    if not ids:
        raise ConfigError("the tokenizer has no mask token and cannot encode '_' to use as one")
    return int(ids[0])


def mask_tokens(
    input_ids: torch.Tensor,  # (B, T)
    maskable: torch.Tensor,  # (B, T) bool: tokens that may be masked (the text, not template/BOS/EOS)
    ratio: float,
    mask_id: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a random ``ratio`` of maskable tokens by ``mask_id``; returns (corrupted ids, masked)."""
    coins = torch.rand(input_ids.shape, generator=generator).to(input_ids.device)  # (B, T)
    masked = (coins < ratio) & maskable
    return torch.where(masked, torch.full_like(input_ids, mask_id), input_ids), masked


class Objective:
    name: ClassVar[str]
    kind: ClassVar[str] = "pairs"  # what the data must hold: "pairs" (query/positive) or "text"

    def __init__(self, emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> None:
        self.emb, self.stage, self.ctx, self.seed = emb, stage, ctx, seed
        self.extra = nn.ModuleDict()  # trainable modules used only while training (never saved)

    @property
    def device(self) -> torch.device:
        return self.emb.device

    def features(self, texts: list[str], instruction: str | None = None) -> Features:
        feats = self.emb.tokenize(texts, instruction)
        return {k: v.to(self.device) for k, v in feats.items()}

    def generator(self, step: int) -> torch.Generator:
        """Masks drawn from (seed, step, rank), so a resumed run draws the same ones."""
        return torch.Generator().manual_seed(hash((self.seed, step, self.ctx.rank)) & 0x7FFF_FFFF)

    def step(self, records: list[Record], spec: DataSpec, step: int) -> StepResult:
        raise NotImplementedError

    def embed_grouped(self, groups: list[tuple[list[str], str | None]], loss_fn: Any) -> tuple[torch.Tensor, int]:
        """Embed each (texts, instruction) group, call ``loss_fn(*embeddings)`` and back-propagate.

        With ``chunk_size`` set this is gradient caching (one chunk's activations at a time); the
        loss and gradients are the same either way. Returns the detached loss and the real tokens.
        """
        chunk = self.stage.chunk_size or max(len(texts) for texts, _ in groups)
        chunks = [
            [self.features(texts[i : i + chunk], instruction) for i in range(0, len(texts), chunk)]
            for texts, instruction in groups
        ]
        tokens = sum(int(f["attention_mask"].sum()) for group in chunks for f in group)
        device_type = self.device.type

        def fp32_loss(*reps: torch.Tensor) -> torch.Tensor:
            # under ``precision: bf16`` autocast would run the similarity matmuls in bf16 (3 significant
            # digits, visible as steps in the logged loss); the model ran in bf16, the loss does not
            with torch.autocast(device_type, enabled=False):
                return loss_fn(*(r.float() for r in reps))

        if self.stage.chunk_size:
            return cached_backward(self.emb, chunks, fp32_loss, self.device), tokens
        reps = [torch.cat([self.emb(f) for f in group]) for group in chunks]  # each (n_group, D)
        loss = fp32_loss(*reps)
        loss.backward()
        return loss.detach(), tokens

    def lm_head(self) -> nn.Module:
        head = self.emb.backbone.get_output_embeddings()
        if head is None:
            raise ConfigError(f"objective '{self.name}' needs the backbone's LM head; this backbone has none")
        return head


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


class Contrastive(_Contrastive):
    """Supervised InfoNCE: in-batch negatives + hard negatives; the instruction goes on queries only.

    Documents that answer a query too (the same positive text, or the positive of another query
    with the same text, as when one definition is the query of several examples) are left out
    of its negatives, across processes as well.
    """

    name = "contrastive"

    def groups(
        self, records: list[Record], spec: DataSpec
    ) -> tuple[list[str], str | None, list[str], list[str | None]]:
        docs, owners = pair_documents(records, self.stage.hard_negatives)
        return [r.query for r in records], spec.instruction, docs, owners  # type: ignore[return-value]


class SimCSE(_Contrastive):
    """Unsupervised SimCSE: the same texts twice; only dropout makes the two views differ."""

    name = "simcse"
    kind = "text"

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


class MNTP(Objective):
    """LLM2Vec's masked next-token prediction: token i predicted from the state at i-1."""

    name = "mntp"
    kind = "text"

    def step(self, records: list[Record], spec: DataSpec, step: int) -> StepResult:
        feats = self.features([r.text for r in records])  # type: ignore[misc]
        ids = feats["input_ids"]  # (B, T)
        corrupted, masked = mask_tokens(
            ids,
            feats["pool_mask"].bool(),
            self.stage.mask_ratio,
            mask_token_id(self.emb.tokenizer),
            self.generator(step),
        )
        labels = torch.where(masked, ids, torch.full_like(ids, IGNORE))  # (B, T)
        hidden = self.emb.hidden_states({**feats, "input_ids": corrupted})  # (B, T, d)
        states, targets = next_token_pairs(hidden, labels)  # (M, d), (M,): token i from the state at i-1
        loss = token_loss(self.lm_head()(states), targets)
        loss.backward()
        return StepResult(loss.detach(), {"mntp": loss.item()}, int(feats["attention_mask"].sum()))


class UniMAE(Objective):
    """UniMAE: masked autoregression (MAR) + reconstruction of X from h_eos (MRC); L = a*MAR + MRC."""

    name = "unimae"
    kind = "text"

    def __init__(self, emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> None:
        super().__init__(emb, stage, ctx, seed)
        cfg = emb.backbone.config
        d = emb.hidden_size
        heads = getattr(cfg, "num_attention_heads", 1) or 1
        heads = heads if d % heads == 0 else 1
        decoder = ReconstructionDecoder(d, heads, stage.max_length or emb.max_length)
        decoder.reset_parameters(torch.Generator().manual_seed(seed + 1))
        self.extra["mrc_decoder"] = decoder.to(device=emb.device, dtype=emb.dtype)

    def step(self, records: list[Record], spec: DataSpec, step: int) -> StepResult:
        feats = self.features([r.text for r in records])  # type: ignore[misc]
        ids, attn, pool = feats["input_ids"], feats["attention_mask"], feats["pool_mask"]  # (B, T) each
        gen = self.generator(step)
        corrupted, _ = mask_tokens(ids, pool.bool(), self.stage.mask_ratio, mask_token_id(self.emb.tokenizer), gen)
        cfeats = {**feats, "input_ids": corrupted}
        hidden = self.emb.hidden_states(cfeats)  # (B, T, d), causal
        head = self.lm_head()
        # MAR: every clean token x_t from the corrupted prefix x~_<t
        clean = torch.where(attn.bool(), ids, torch.full_like(ids, IGNORE))  # (B, T)
        states, targets = next_token_pairs(hidden, clean)
        mar = token_loss(head(states), targets)
        # MRC: rebuild the clean text tokens from h_eos of the corrupted input
        h_eos = self.emb.recipe.pool(hidden, cfeats, self.emb.heads)  # (B, d)
        order = torch.argsort((pool == 0).int(), dim=1, stable=True)  # text tokens first, in order
        N = int(pool.sum(1).max())
        text_ids = ids.gather(1, order)[:, :N]  # (B, N)
        valid = pool.gather(1, order)[:, :N]  # (B, N)
        emb_tokens = self.emb.backbone.get_input_embeddings()(text_ids)  # (B, N, d)
        rows = self.extra["mrc_decoder"](h_eos, emb_tokens, valid, 1.0 - self.stage.mrc_mask_ratio, gen)  # (B, N, d)
        mrc = token_loss(head(rows[valid.bool()]), text_ids[valid.bool()])
        loss = self.stage.alpha * mar + mrc
        loss.backward()
        return StepResult(loss.detach(), {"mar": mar.item(), "mrc": mrc.item()}, int(attn.sum()))


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

    def __init__(self, emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> None:
        super().__init__(emb, stage, ctx, seed)
        from .teacher import TeacherCache

        self.teacher = TeacherCache(stage.teacher, max_length=stage.teacher_max_length)

    @staticmethod
    def texts_of(records: list[Record], hard_negatives: int) -> list[str]:
        """Every text the teacher must embed for a batch of records."""
        if records[0].text is not None:
            return [r.text for r in records]  # type: ignore[misc]
        docs, _ = pair_documents(records, hard_negatives)
        return [*(r.query for r in records), *docs]  # type: ignore[misc]

    def prepare(self, texts: list[str]) -> None:
        """Encode (once, resumably, with a progress bar) every text of the stage ahead of training."""
        self.teacher.ensure(texts, progress=True)

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


OBJECTIVES: dict[str, type[Objective]] = {c.name: c for c in (Contrastive, SimCSE, MNTP, UniMAE, Distill)}


def build_objective(emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> Objective:
    allowed = emb.recipe.losses
    if stage.objective not in allowed:
        raise ConfigError(
            f"recipe '{emb.recipe.name}' does not train with '{stage.objective}'; its objectives: {', '.join(allowed)}"
        )
    return OBJECTIVES[stage.objective](emb, stage, ctx, seed)
