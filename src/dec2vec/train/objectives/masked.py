"""Masked-token objectives on plain text: LLM2Vec's MNTP and UniMAE's MAR + MRC.

Both corrupt a share of the text tokens (``mask_tokens``, drawn from the objective's per-step
generator so a resumed run masks the same ones) and predict tokens with the backbone's LM head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ...embedder import Embedder
from ...errors import ConfigError
from ..distributed import DistContext
from ..losses import IGNORE, next_token_pairs, token_loss
from ..mrc import ReconstructionDecoder
from .base import Objective, StepResult
from .registry import register

if TYPE_CHECKING:
    from ..config import DataSpec, StageConfig
    from ..data import Record


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


@register
class MNTP(Objective):
    """LLM2Vec's masked next-token prediction: token i predicted from the state at i-1."""

    name = "mntp"
    kind = "text"
    parts = ("mntp",)
    runs_forward_only = False  # the LM head, outside the embedding forward

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


@register
class UniMAE(Objective):
    """UniMAE: masked autoregression (MAR) + reconstruction of X from h_eos (MRC); L = a*MAR + MRC."""

    name = "unimae"
    kind = "text"
    parts = ("mar", "mrc")
    runs_forward_only = False  # the LM head and input embeddings, outside the embedding forward

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
