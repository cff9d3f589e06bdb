"""Texts -> checked, tokenized blocks -> padded features: everything before the model runs.

A block of texts is validated and tokenized once (:meth:`TextPipeline.prepare`): the backbone's
token layouts from the recipe's segments, and the light encoder's ids for Causal2Vec. Texts over
the limit are cut there, or refused. The encode engine and :meth:`Embedder.tokenize` then only
pad the rows of a batch (:meth:`TextPipeline.features`), so no text is tokenized twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .encoder import EncoderTokenizer
from .errors import InputError, TruncationError
from .inputs import Layout, TextTokenizer, TokenBlock, build_block, collate_block
from .recipes import Recipe

PaddingSide = Literal["right", "left"]


class TruncationWarning(UserWarning):
    """Some texts were longer than the model's limit and were cut; ``indices`` says which."""

    def __init__(self, indices: list[int]) -> None:
        super().__init__(
            f"{len(indices)} text(s) exceeded the model's limit and were truncated (first: item {indices[0]})"
        )
        self.indices = indices


def validate_texts(texts: Any, offset: int = 0) -> list[str]:
    """The caller's texts as a list of non-empty strings, or an InputError naming the bad item.

    ``offset`` is the index of ``texts[0]`` in a longer stream, so messages name the global item.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)):
        raise InputError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise InputError("no texts to encode: the list is empty")
    for i, t in enumerate(texts, start=offset):
        if not isinstance(t, str):
            raise InputError(f"item {i}: expected a string, got {type(t).__name__}", index=i)
        if not t.strip():
            raise InputError(f"item {i}: the text is empty or whitespace-only", index=i)
    return list(texts)


@dataclass(frozen=True)
class Prepared:
    """A block of texts, tokenized once per tokenizer and cut to the limits."""

    tokens: TokenBlock  # the backbone's tokens of each text, template included
    encoder_ids: list[list[int]] | None  # the light encoder's rows of ids; None without one
    truncated: list[int]  # block-local indices of the texts that were cut (either model)
    encoder_bounds: np.ndarray | None = None  # (n+1,) text i's rows when the encoder reads windows; None: one each

    @property
    def layouts(self) -> list[Layout]:
        """One :class:`Layout` per text (built on demand: the encode path pads from ``tokens``)."""
        return [self.tokens.layout(i) for i in range(len(self.tokens))]

    @property
    def lengths(self) -> list[int]:
        """Each text's backbone input length in tokens."""
        return self.tokens.lengths.tolist()


class TextPipeline:
    """The recipe's inputs for one backbone tokenizer (and light encoder), cut at ``max_length``.

    ``max_length`` is the longest backbone input in tokens, template included; the embedder lowers
    it for serving and training stages, so it is read on every call.
    """

    def __init__(self, recipe: Recipe, tokenizer: Any, encoder: EncoderTokenizer | None, max_length: int) -> None:
        self.recipe = recipe
        self.tokenizer = TextTokenizer(tokenizer, force_bos=recipe.bos_first)
        self.encoder = encoder
        self.max_length = max_length

    def prepare(
        self, texts: list[str], instruction: str | None = None, truncate: bool = True, offset: int = 0
    ) -> Prepared:
        """Tokenize validated texts; errors name item ``offset + i`` (its index in the caller's stream)."""
        tt, recipe = self.tokenizer, self.recipe
        segments = [recipe.segments(t, instruction) for t in texts]
        block, offsets = build_block(segments, tt, recipe.contextual_token)
        # texts with no pooled token or over the limit, in order: the Python loop runs over these only
        empty = block.pooled_counts() == 0  # (n,)
        cut: list[int] = []
        cut_blocks: list[TokenBlock] = []
        for i in np.flatnonzero(empty | (block.lengths > self.max_length)).tolist():
            length = int(block.lengths[i])
            if empty[i]:
                raise InputError(f"item {offset + i}: the text has no tokens for this tokenizer", index=offset + i)
            if not truncate:
                raise TruncationError(
                    f"item {offset + i}: {length} tokens (template included) exceed max_length "
                    f"{self.max_length}; shorten the text or allow truncation",
                    index=offset + i,
                )
            alone = offsets[i] if "".join(seg.text for seg in segments[i]) == texts[i] else None
            cut_blocks.append(self._truncated(offset + i, texts[i], instruction, length, alone))
            cut.append(i)
        if cut:
            block = block.replace(cut, TokenBlock.concat(cut_blocks))
        if self.encoder is None:
            return Prepared(block, None, cut)
        rows, bounds, long = self.encoder.split(texts)
        if bounds is not None:  # read whole, in windows: nothing of the text is lost to the encoder
            return Prepared(block, rows, cut, bounds)
        if long and not truncate:
            i = long[0]
            raise TruncationError(
                f"item {offset + i}: {self.encoder.count_tokens([texts[i]])[0]} tokens exceed the light "
                f"encoder's limit {self.encoder.max_length}",
                index=offset + i,
            )
        return Prepared(block, rows, sorted(set(cut) | set(long)))

    def _truncated(
        self, i: int, text: str, instruction: str | None, length: int, offsets: list[tuple[int, int]] | None
    ) -> TokenBlock:
        """The tokens (one row) of ``text`` cut at a token boundary so that the whole input fits ``max_length``.

        ``offsets``: the text's token spans when it was tokenized alone already (its input is the
        text itself); else it is tokenized alone here, as the template may merge with its edges.
        """
        tt, recipe = self.tokenizer, self.recipe
        offsets = tt.offsets([text])[0] if offsets is None else offsets
        keep = len(offsets) - math.ceil((length - self.max_length) / recipe.text_copies)
        while keep >= 1:  # joint tokenization can merge differently at the cut: shrink until it fits
            segments = recipe.segments(text[: offsets[keep - 1][1]], instruction)
            one, _ = build_block([segments], tt, recipe.contextual_token)
            if int(one.lengths[0]) <= self.max_length:
                return one
            keep -= 1
        raise InputError(f"item {i}: the template and instruction alone fill max_length {self.max_length}", index=i)

    def features(
        self, prepared: Prepared, rows: Sequence[int] | None = None, padding_side: PaddingSide = "right"
    ) -> dict[str, torch.Tensor]:
        """(B, T) features of ``rows`` of a prepared block (all of it by default), as CPU tensors."""
        index = range(len(prepared.tokens)) if rows is None else rows
        feats = collate_block(prepared.tokens, index, self.tokenizer.pad_id, padding_side)
        if self.encoder is not None and prepared.encoder_ids is not None:
            feats.update(self.encoder.pad_texts(prepared.encoder_ids, prepared.encoder_bounds, index))
        return feats
