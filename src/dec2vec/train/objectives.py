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
from .distributed import DistContext, gather_with_grad
from .gradcache import cached_backward
from .losses import IGNORE, info_nce, next_token_pairs, token_loss
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

    def lm_head(self) -> nn.Module:
        head = self.emb.backbone.get_output_embeddings()
        if head is None:
            raise ConfigError(f"objective '{self.name}' needs the backbone's LM head; this backbone has none")
        return head


class _Contrastive(Objective):
    """Shared by supervised InfoNCE and SimCSE: embed two groups, score group 0 against group 1."""

    def groups(self, records: list[Record], spec: DataSpec) -> tuple[list[str], str | None, list[str]]:
        raise NotImplementedError

    def step(self, records: list[Record], spec: DataSpec, step: int) -> StepResult:
        q_texts, instruction, d_texts = self.groups(records, spec)
        temperature = self.stage.temperature

        def loss_fn(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
            d_all, offset = gather_with_grad(d, self.ctx)  # (N_global, D)
            return info_nce(q, d_all, temperature, offset)

        chunk = self.stage.chunk_size or max(len(q_texts), len(d_texts))
        q_chunks = [self.features(q_texts[i : i + chunk], instruction) for i in range(0, len(q_texts), chunk)]
        d_chunks = [self.features(d_texts[i : i + chunk]) for i in range(0, len(d_texts), chunk)]
        tokens = sum(int(f["attention_mask"].sum()) for f in (*q_chunks, *d_chunks))
        if self.stage.chunk_size:
            loss = cached_backward(self.emb, [q_chunks, d_chunks], loss_fn, self.device)
        else:
            q = torch.cat([self.emb(f) for f in q_chunks])  # (b, D)
            d = torch.cat([self.emb(f) for f in d_chunks])  # (n, D)
            loss = loss_fn(q, d)
            loss.backward()
            loss = loss.detach()
        return StepResult(loss, {self.name: loss.item()}, tokens)


class Contrastive(_Contrastive):
    """Supervised InfoNCE: in-batch negatives + hard negatives; the instruction goes on queries only."""

    name = "contrastive"

    def groups(self, records: list[Record], spec: DataSpec) -> tuple[list[str], str | None, list[str]]:
        k = self.stage.hard_negatives
        docs = [r.positive for r in records]
        positives = set(docs)
        for r in records:
            # a neighbour verse can be another query's positive: as a negative it would be a false one
            docs.extend(n for n in r.negatives[:k] if n not in positives)
        return [r.query for r in records], spec.instruction, docs  # type: ignore[return-value]


class SimCSE(_Contrastive):
    """Unsupervised SimCSE: the same texts twice; only dropout makes the two views differ."""

    name = "simcse"
    kind = "text"

    def __init__(self, emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> None:
        super().__init__(emb, stage, ctx, seed)
        self._old_dropout: dict[nn.Module, float] = {}
        self._dropout_set = False

    def groups(self, records: list[Record], spec: DataSpec) -> tuple[list[str], str | None, list[str]]:
        texts = [r.text for r in records]
        return texts, None, texts  # type: ignore[return-value]

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


OBJECTIVES: dict[str, type[Objective]] = {c.name: c for c in (Contrastive, SimCSE, MNTP, UniMAE)}


def build_objective(emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> Objective:
    allowed = emb.recipe.losses
    if stage.objective not in allowed:
        raise ConfigError(
            f"recipe '{emb.recipe.name}' does not train with '{stage.objective}'; its objectives: {', '.join(allowed)}"
        )
    return OBJECTIVES[stage.objective](emb, stage, ctx, seed)
