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

import torch

from .encoder import EncoderTokenizer
from .errors import InputError, TruncationError
from .inputs import Layout, TextTokenizer, build_layouts, collate
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
    """A block of texts, tokenized once and cut to the limits."""

    layouts: list[Layout]  # the backbone's tokens of each text, template included
    encoder_ids: list[list[int]] | None  # the light encoder's ids of each text; None without one
    truncated: list[int]  # block-local indices of the texts that were cut (either model)


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
        layouts = build_layouts([recipe.segments(t, instruction) for t in texts], tt, recipe.contextual_token)
        cut: list[int] = []
        for i, lay in enumerate(layouts):
            if not any(lay.pooled):
                raise InputError(f"item {offset + i}: the text has no tokens for this tokenizer", index=offset + i)
            if len(lay.ids) > self.max_length:
                if not truncate:
                    raise TruncationError(
                        f"item {offset + i}: {len(lay.ids)} tokens (template included) exceed max_length "
                        f"{self.max_length}; shorten the text or allow truncation",
                        index=offset + i,
                    )
                layouts[i] = self._truncated(offset + i, texts[i], instruction, len(lay.ids))
                cut.append(i)
        if self.encoder is None:
            return Prepared(layouts, None, cut)
        rows = self.encoder.token_ids(texts)
        limit = self.encoder.max_length
        long = [i for i, row in enumerate(rows) if len(row) > limit]
        if long and not truncate:
            raise TruncationError(
                f"item {offset + long[0]}: {len(rows[long[0]])} tokens exceed the light encoder's limit {limit}",
                index=offset + long[0],
            )
        if long:  # re-tokenized with the tokenizer's own truncation, which keeps its special tokens
            for i, row in zip(long, self.encoder.cut_ids([texts[i] for i in long]), strict=True):
                rows[i] = row
        return Prepared(layouts, rows, sorted(set(cut) | set(long)))

    def _truncated(self, i: int, text: str, instruction: str | None, length: int) -> Layout:
        """The layout of ``text`` cut at a token boundary so that the whole input fits ``max_length``."""
        tt, recipe = self.tokenizer, self.recipe
        offsets = tt.offsets([text])[0]
        keep = len(offsets) - math.ceil((length - self.max_length) / recipe.text_copies)
        while keep >= 1:  # joint tokenization can merge differently at the cut: shrink until it fits
            lay = build_layouts(
                [recipe.segments(text[: offsets[keep - 1][1]], instruction)], tt, recipe.contextual_token
            )[0]
            if len(lay.ids) <= self.max_length:
                return lay
            keep -= 1
        raise InputError(f"item {i}: the template and instruction alone fill max_length {self.max_length}", index=i)

    def features(
        self, prepared: Prepared, rows: Sequence[int] | None = None, padding_side: PaddingSide = "right"
    ) -> dict[str, torch.Tensor]:
        """(B, T) features of ``rows`` of a prepared block (all of it by default), as CPU tensors."""
        index = range(len(prepared.layouts)) if rows is None else rows
        feats = collate([prepared.layouts[i] for i in index], self.tokenizer.pad_id, padding_side)
        if self.encoder is not None and prepared.encoder_ids is not None:
            feats.update(self.encoder.pad([prepared.encoder_ids[i] for i in index]))
        return feats
