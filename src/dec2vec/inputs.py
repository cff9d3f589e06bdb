"""From text to padded tensors: token layouts per text, then one batch.

A recipe describes an input as string segments (instruction prefix, template text, the text
itself), each marked pooled or not. The segments are joined and tokenized as one string, so the
model sees exactly the tokens it would see for that prompt (a template ending in a space merges
with the next word, as in normal use); character offsets then mark which tokens belong to pooled
text, so mean pooling skips instruction and template tokens. The builder adds the model's BOS
(only if its tokenizer adds one), the Contextual-token slot when asked, and EOS.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
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


@dataclass(frozen=True)
class TokenBlock:
    """A block of texts' backbone tokens in flat arrays: the fast form of a list of :class:`Layout`.

    Why flat: the encode engine collates batches from it with a few numpy operations, so no Python
    loop runs per token (or per text) on the prefetch thread, where it would hold the GIL the
    model thread needs to launch kernels. Row ``i`` is ``ids[starts[i] : starts[i] + lengths[i]]``.
    """

    ids: np.ndarray  # (N,) int64: every row's tokens, BOS, Contextual slot and EOS included
    pooled: np.ndarray  # (N,) int64: 1 where the token belongs to pooled text
    starts: np.ndarray  # (n,) int64: where each row starts in ids
    lengths: np.ndarray  # (n,) int64
    eos_pos: np.ndarray  # (n,) int64: EOS position within its row
    ctx_pos: int | None  # the Contextual slot's position, the same in every row; None without one

    def __len__(self) -> int:
        return len(self.starts)

    def layout(self, i: int) -> Layout:
        s, n = int(self.starts[i]), int(self.lengths[i])
        ids, pooled = tuple(self.ids[s : s + n].tolist()), tuple(self.pooled[s : s + n].tolist())
        return Layout(ids, pooled, int(self.eos_pos[i]), self.ctx_pos)

    def pooled_counts(self) -> np.ndarray:
        """(n,) pooled tokens per row."""
        csum = np.concatenate([[0], np.cumsum(self.pooled)])  # (N+1,)
        return csum[self.starts + self.lengths] - csum[self.starts]

    def replace(self, rows: list[int], other: TokenBlock) -> TokenBlock:
        """This block with ``rows`` taken from ``other`` (one row each, in order); old tokens stay unused."""
        starts, lengths, eos = self.starts.copy(), self.lengths.copy(), self.eos_pos.copy()
        starts[rows] = other.starts + len(self.ids)
        lengths[rows], eos[rows] = other.lengths, other.eos_pos
        ids, pooled = np.concatenate([self.ids, other.ids]), np.concatenate([self.pooled, other.pooled])
        return TokenBlock(ids, pooled, starts, lengths, eos, self.ctx_pos)

    @staticmethod
    def concat(blocks: list[TokenBlock]) -> TokenBlock:
        """The rows of ``blocks`` one after another in one block (their Contextual slots agree)."""
        lengths = np.concatenate([b.lengths for b in blocks])
        return TokenBlock(
            np.concatenate([b.ids for b in blocks]),
            np.concatenate([b.pooled for b in blocks]),
            np.cumsum(lengths) - lengths,
            lengths,
            np.concatenate([b.eos_pos for b in blocks]),
            blocks[0].ctx_pos,
        )

    @staticmethod
    def from_layouts(layouts: list[Layout]) -> TokenBlock:
        ids, lengths = flat_ids([lay.ids for lay in layouts])
        pooled, _ = flat_ids([lay.pooled for lay in layouts])
        eos = np.fromiter((lay.eos_pos for lay in layouts), dtype=np.int64, count=len(layouts))
        return TokenBlock(ids, pooled, np.cumsum(lengths) - lengths, lengths, eos, layouts[0].ctx_pos)


def flat_ids(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged rows of ids -> ((N,) ids one after another, (n,) row lengths), without a loop per token in Python."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum())), lengths


Offsets = list[list[tuple[int, int]]]  # per string, each token's character span


def build_block(
    segment_lists: list[list[Segment]], tt: TextTokenizer, contextual_token: bool
) -> tuple[TokenBlock, Offsets]:
    """Tokenize each joined segment list in one batch call and mark pooled tokens by their offsets.

    The offsets (of each joined string's tokens, no special tokens) are returned too: cutting a
    text that is its whole input reads its token boundaries there instead of tokenizing it again.
    """
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
    enc = tt.tok(
        strings,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    text_ids, text_lens = flat_ids(enc["input_ids"])  # (M,), (n,)
    pairs = itertools.chain.from_iterable(itertools.chain.from_iterable(enc["offset_mapping"]))
    offsets = np.fromiter(pairs, dtype=np.int64, count=2 * len(text_ids)).reshape(-1, 2)  # (M, 2)
    # a token is text if its characters overlap pooled text ("ĠParis" after "Query:" counts)
    k = max((len(s) for s in spans), default=0)
    bounds = np.zeros((len(spans), k, 2), dtype=np.int64)  # (n, k, 2); (0, 0) pads: overlaps no token
    for i, pooled_spans in enumerate(spans):
        bounds[i, : len(pooled_spans)] = pooled_spans
    tok_bounds = np.repeat(bounds, text_lens, axis=0)  # (M, k, 2): each token's text's spans
    starts_before_end = offsets[:, None, 0] < tok_bounds[:, :, 1]  # (M, k)
    ends_after_start = offsets[:, None, 1] > tok_bounds[:, :, 0]  # (M, k)
    text_pooled = (starts_before_end & ends_after_start).any(axis=1)  # (M,)

    head: list[int] = [] if tt.bos_id is None else [tt.bos_id]
    ctx_pos = None
    if contextual_token:  # after BOS, before everything else (docs/METHODS.md, Causal2Vec step 3)
        ctx_pos = len(head)
        head = [*head, tt.pad_id]  # placeholder: its input embedding is replaced by the projector output
    lengths = text_lens + len(head) + 1  # (n,): head, text, EOS
    ends = np.cumsum(lengths)
    starts = ends - lengths
    ids = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.int64)  # (N,)
    body = np.ones(len(ids), dtype=bool)  # (N,): the text's tokens, not head or EOS
    for j, token in enumerate(head):
        ids[starts + j] = token
        body[starts + j] = False
    ids[ends - 1] = tt.eos_id
    body[ends - 1] = False
    ids[body] = text_ids
    pooled = np.zeros(len(ids), dtype=np.int64)
    pooled[body] = text_pooled
    return TokenBlock(ids, pooled, starts, lengths, lengths - 1, ctx_pos), enc["offset_mapping"]


def build_layouts(segment_lists: list[list[Segment]], tt: TextTokenizer, contextual_token: bool) -> list[Layout]:
    """:func:`build_block`, one :class:`Layout` per text."""
    block, _ = build_block(segment_lists, tt, contextual_token)
    return [block.layout(i) for i in range(len(block))]


def padded_positions(lengths: np.ndarray, padding_side: Literal["right", "left"]) -> np.ndarray:
    """(B, T) bool mask of the real tokens of rows of ``lengths`` (B,) padded to the longest.

    Assigning a flat array through it fills row after row, each in order: how batches are built.
    """
    cols = np.arange(int(lengths.max()))  # (T,)
    if padding_side == "left":
        return cols[None, :] >= (len(cols) - lengths)[:, None]
    return cols[None, :] < lengths[:, None]


def collate_block(
    block: TokenBlock, rows: Sequence[int], pad_id: int, padding_side: Literal["right", "left"] = "right"
) -> dict[str, torch.Tensor]:
    """Pad ``rows`` of a block into (B, T) tensors; indices point at the padded positions."""
    index = np.asarray(rows, dtype=np.int64)  # (B,)
    lengths = block.lengths[index]  # (B,)
    mask = padded_positions(lengths, padding_side)  # (B, T)
    before = np.cumsum(lengths) - lengths  # (B,): tokens of earlier rows in the batch
    src = np.repeat(block.starts[index] - before, lengths) + np.arange(int(lengths.sum()))  # (N,) into block.ids
    input_ids = np.full(mask.shape, pad_id, dtype=np.int64)
    input_ids[mask] = block.ids[src]
    pool_mask = np.zeros(mask.shape, dtype=np.int64)
    pool_mask[mask] = block.pooled[src]
    off = mask.shape[1] - lengths if padding_side == "left" else np.zeros_like(lengths)  # (B,)
    out = {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(mask.astype(np.int64)),
        "pool_mask": torch.from_numpy(pool_mask),
        "eos_index": torch.from_numpy(off + block.eos_pos[index]),
    }
    if block.ctx_pos is not None:
        out["ctx_index"] = torch.from_numpy(off + block.ctx_pos)
    return out


def collate(
    layouts: list[Layout], pad_id: int, padding_side: Literal["right", "left"] = "right"
) -> dict[str, torch.Tensor]:
    """Pad layouts into (B, T) tensors; indices point at the padded positions."""
    return collate_block(TokenBlock.from_layouts(layouts), range(len(layouts)), pad_id, padding_side)


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
