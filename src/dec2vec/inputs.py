"""From text to padded tensors: token layouts per text, then one batch.

A recipe describes an input as segments (instruction prefix, template text, the text itself),
each marked pooled or not, so mean pooling can skip instruction tokens. The builder adds the
model's BOS (only if its tokenizer adds one), the Contextual-token slot when asked, and EOS.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import torch

from .errors import InputError


@dataclass(frozen=True)
class Segment:
    ids: tuple[int, ...]
    pooled: bool = False  # True for the tokens mean pooling averages over


@dataclass(frozen=True)
class Layout:
    """One text, ready to pad."""

    ids: tuple[int, ...]
    pooled: tuple[int, ...]  # 0/1 per token
    eos_pos: int
    ctx_pos: int | None = None


class TextTokenizer:
    """A thin view of a Hugging Face tokenizer with the few facts the layouts need."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        eos = tokenizer.eos_token_id
        if eos is None:
            raise InputError("the backbone's tokenizer defines no EOS token; set tokenizer.eos_token")
        self.eos_id: int = int(eos)
        pad = tokenizer.pad_token_id
        self.pad_id: int = int(pad) if pad is not None else self.eos_id
        bos = tokenizer.bos_token_id
        probe = tokenizer("a", add_special_tokens=True)["input_ids"]
        self.bos_id: int | None = int(bos) if bos is not None and probe and probe[0] == bos else None
        self.ids = lru_cache(maxsize=4096)(self._ids)  # templates and instructions repeat

    def _ids(self, text: str) -> tuple[int, ...]:
        return tuple(self.tok(text, add_special_tokens=False)["input_ids"])


def build_layout(segments: list[Segment], tt: TextTokenizer, contextual_token: bool) -> Layout:
    ids: list[int] = []
    pooled: list[int] = []
    if tt.bos_id is not None:
        ids.append(tt.bos_id)
        pooled.append(0)
    ctx_pos = None
    if contextual_token:  # after BOS, before everything else (METHODS.md, Causal2Vec step 3)
        ctx_pos = len(ids)
        ids.append(tt.pad_id)  # placeholder: its input embedding is replaced by the projector output
        pooled.append(0)
    for seg in segments:
        ids.extend(seg.ids)
        pooled.extend([int(seg.pooled)] * len(seg.ids))
    ids.append(tt.eos_id)
    pooled.append(0)
    return Layout(tuple(ids), tuple(pooled), eos_pos=len(ids) - 1, ctx_pos=ctx_pos)


def collate(
    layouts: list[Layout], pad_id: int, padding_side: Literal["right", "left"] = "right"
) -> dict[str, torch.Tensor]:
    """Pad layouts into (B, T) tensors; indices point at the padded positions."""
    T = max(len(lay.ids) for lay in layouts)
    B = len(layouts)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    pool_mask = torch.zeros((B, T), dtype=torch.long)
    eos_index = torch.empty(B, dtype=torch.long)
    ctx_index = torch.zeros(B, dtype=torch.long)
    for b, lay in enumerate(layouts):
        n = len(lay.ids)
        off = T - n if padding_side == "left" else 0
        input_ids[b, off : off + n] = torch.tensor(lay.ids)
        attention_mask[b, off : off + n] = 1
        pool_mask[b, off : off + n] = torch.tensor(lay.pooled)
        eos_index[b] = off + lay.eos_pos
        if lay.ctx_pos is not None:
            ctx_index[b] = off + lay.ctx_pos
    out = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "pool_mask": pool_mask,
        "eos_index": eos_index,
    }
    if layouts[0].ctx_pos is not None:
        out["ctx_index"] = ctx_index
    return out
