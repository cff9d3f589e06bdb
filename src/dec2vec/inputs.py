"""From text to padded tensors: token layouts per text, then one batch.

A recipe describes an input as string segments (instruction prefix, template text, the text
itself), each marked pooled or not. The segments are joined and tokenized as one string, so the
model sees exactly the tokens it would see for that prompt (a template ending in a space merges
with the next word, as in normal use); character offsets then mark which tokens belong to pooled
text, so mean pooling skips instruction and template tokens. The builder adds the model's BOS
(only if its tokenizer adds one), the Contextual-token slot when asked, and EOS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .errors import ConfigError, InputError


@dataclass(frozen=True)
class Segment:
    text: str
    pooled: bool = False  # True for the text that mean pooling averages over


@dataclass(frozen=True)
class Layout:
    """One text, ready to pad."""

    ids: tuple[int, ...]
    pooled: tuple[int, ...]  # 0/1 per token
    eos_pos: int
    ctx_pos: int | None = None


class TextTokenizer:
    """A thin view of a Hugging Face tokenizer with the few facts the layouts need."""

    def __init__(self, tokenizer: Any, force_bos: bool = False) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("dec2vec needs a fast (Rust) tokenizer: it relies on character offsets")
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
        if force_bos and self.bos_id is None and bos is not None:
            self.bos_id = int(bos)  # the recipe wants BOS first although the tokenizer does not add it
        elif force_bos and bos is None:
            import warnings

            warnings.warn(
                "bos_first cannot apply: the tokenizer defines no BOS token, so the Contextual token is the "
                "first position (the attention sink, whose state hardly depends on its input); consider a "
                "backbone with a BOS token, or bos_first: false to silence this",
                UserWarning,
                stacklevel=2,
            )

    def offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character span of every token of each text (no special tokens)."""
        return self.tok(texts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]


def build_layouts(segment_lists: list[list[Segment]], tt: TextTokenizer, contextual_token: bool) -> list[Layout]:
    """Tokenize each joined segment list in one batch call and mark pooled tokens by their offsets."""
    strings: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    for segments in segment_lists:
        pos, pooled_spans = 0, []
        for seg in segments:
            if seg.pooled:
                pooled_spans.append((pos, pos + len(seg.text)))
            pos += len(seg.text)
        strings.append("".join(seg.text for seg in segments))
        spans.append(pooled_spans)
    enc = tt.tok(strings, add_special_tokens=False, return_offsets_mapping=True)
    head: list[int] = [] if tt.bos_id is None else [tt.bos_id]
    ctx_pos = None
    if contextual_token:  # after BOS, before everything else (docs/METHODS.md, Causal2Vec step 3)
        ctx_pos = len(head)
        head = [*head, tt.pad_id]  # placeholder: its input embedding is replaced by the projector output
    out = []
    for ids, offsets, pooled_spans in zip(enc["input_ids"], enc["offset_mapping"], spans, strict=True):
        # a token is text if its characters overlap pooled text ("ĠParis" after "Query:" counts)
        if len(pooled_spans) == 1:  # the usual case, written out: this loop runs once per token
            s0, e0 = pooled_spans[0]
            pooled = [1 if a < e0 and b > s0 else 0 for a, b in offsets]
        else:
            pooled = [int(any(a < e and b > s for s, e in pooled_spans)) for a, b in offsets]
        all_ids = (*head, *ids, tt.eos_id)
        out.append(Layout(all_ids, (0,) * len(head) + tuple(pooled) + (0,), len(all_ids) - 1, ctx_pos))
    return out


def collate(
    layouts: list[Layout], pad_id: int, padding_side: Literal["right", "left"] = "right"
) -> dict[str, torch.Tensor]:
    """Pad layouts into (B, T) tensors; indices point at the padded positions."""
    T = max(len(lay.ids) for lay in layouts)
    B = len(layouts)
    input_ids = np.full((B, T), pad_id, dtype=np.int64)
    attention_mask = np.zeros((B, T), dtype=np.int64)
    pool_mask = np.zeros((B, T), dtype=np.int64)
    eos_index = np.empty(B, dtype=np.int64)
    ctx_index = np.zeros(B, dtype=np.int64)
    for b, lay in enumerate(layouts):
        n = len(lay.ids)
        off = T - n if padding_side == "left" else 0
        input_ids[b, off : off + n] = lay.ids
        attention_mask[b, off : off + n] = 1
        pool_mask[b, off : off + n] = lay.pooled
        eos_index[b] = off + lay.eos_pos
        if lay.ctx_pos is not None:
            ctx_index[b] = off + lay.ctx_pos
    out = {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention_mask),
        "pool_mask": torch.from_numpy(pool_mask),
        "eos_index": torch.from_numpy(eos_index),
    }
    if layouts[0].ctx_pos is not None:
        out["ctx_index"] = torch.from_numpy(ctx_index)
    return out


def pack_features(attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """How a right-padded (B, T) batch maps onto one unpadded row of N real tokens.

    ``pack_index`` (N,) is each real token's flat position b*T + t, in row order, so that
    ``padded.view(B*T, d)[pack_index]`` packs and ``index_copy`` unpacks; ``pack_positions`` (N,)
    restarts at 0 for each text; ``cu_seqlens`` (B+1,) int32 is where each text starts, then N.
    """
    B, T = attention_mask.shape
    flat = attention_mask.reshape(-1).bool()
    if not bool((attention_mask[:, :-1] >= attention_mask[:, 1:]).all()):
        raise ValueError("packing needs right padding")
    pack_index = flat.nonzero().squeeze(1)  # (N,)
    lengths = attention_mask.sum(dim=1)  # (B,)
    cu = torch.zeros(B + 1, dtype=torch.int32)
    cu[1:] = lengths.cumsum(0).to(torch.int32)
    return {"pack_index": pack_index, "pack_positions": pack_index % T, "cu_seqlens": cu}
