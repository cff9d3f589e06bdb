"""Causal2Vec's light bidirectional encoder: any Hugging Face encoder with its native pooling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .inputs import flat_ids, padded_positions
from .pooling import mean_pool


def native_pooling(folder: Path | str) -> str:
    """``mean`` or ``cls``, read from a sentence-transformers ``1_Pooling/config.json`` if there is one."""
    cfg = Path(folder) / "1_Pooling" / "config.json"
    if cfg.is_file():
        values = json.loads(cfg.read_text())
        if values.get("pooling_mode_cls_token"):
            return "cls"
    return "mean"


#: what happens to a text longer than the encoder's limit: cut there (what it was trained with), or read
#: as consecutive windows of the limit whose pooled vectors are averaged, weighted by their tokens
LONG_TEXTS = ("cut", "chunk")


class EncoderTokenizer:
    """The light encoder's tokenization half: ids counted, cut (or split into windows) and padded, with no weights.

    Why apart from :class:`LightEncoder`: the text pipeline needs only this, and so does the ONNX
    loader (``dec2vec.export``), which runs the encoder's weights in onnxruntime instead.

    ``long_texts="chunk"``: a text over ``max_length`` is read whole, as consecutive windows of
    ``max_length`` tokens (each with the tokenizer's special tokens) pooled alone and averaged with
    their real-token counts as weights, so a long passage is summarised instead of silently losing
    its end. Features then carry ``encoder_owner`` (R,): the batch row each window belongs to.
    """

    def __init__(self, tokenizer: Any, max_length: int, long_texts: str = "cut") -> None:
        if long_texts not in LONG_TEXTS:
            raise ValueError(f"long_texts must be one of {LONG_TEXTS}, got '{long_texts}'")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.long_texts = long_texts

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(row) for row in self.token_ids(texts)]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's ids, special tokens included and not cut: their lengths tell which texts are too long."""
        # verbose=False: counting a long text is how truncation is detected, not an error worth a log line.
        return self.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]

    def cut_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's ids cut to ``max_length`` the tokenizer's way (its special tokens kept)."""
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def split(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray | None, list[int]]:
        """Each text's rows of ids by the ``long_texts`` policy, in one tokenizer pass.

        Returns ``(rows, bounds, long)``: with ``cut``, one row per text and ``bounds`` None; with
        ``chunk``, every window, text ``i`` owning ``rows[bounds[i]:bounds[i+1]]``; ``long`` the
        texts over the limit (cut, or read in several windows).
        """
        if self.long_texts == "cut":
            rows, long = self.cut_once(texts)
            return rows, None, long
        rows, sample = self._windows(texts)
        bounds = np.searchsorted(sample, np.arange(len(texts) + 1))  # (n+1,) sample is sorted
        long = np.flatnonzero(np.diff(bounds) > 1).tolist()
        return rows, bounds, long

    def _windows(self, texts: list[str]) -> tuple[list[list[int]], np.ndarray]:
        enc = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            return_overflowing_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return list(enc["input_ids"]), np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)

    def cut_once(self, texts: list[str]) -> tuple[list[list[int]], list[int]]:
        """Each text's ids cut to ``max_length`` the tokenizer's way, and the indices of those that were cut.

        Why one call: the tokenizer's overflow keeps what truncation removed as extra rows, so a
        text was cut exactly when it has more than one; counting and cutting then read one pass
        of the tokenizer per text instead of two (:meth:`token_ids`, then :meth:`cut_ids`).
        """
        ids, sample = self._windows(texts)  # (R,) rows and the text of each
        first = np.flatnonzero(np.r_[True, sample[1:] != sample[:-1]])  # (n,) each text's kept row
        if len(first) != len(texts):
            raise RuntimeError(f"the light encoder's tokenizer returned {len(first)} rows for {len(texts)} texts")
        rows = [ids[r] for r in first.tolist()]
        long = np.flatnonzero(np.diff(np.r_[first, len(sample)]) > 1).tolist()  # texts with overflow rows
        return rows, long

    def pad_texts(
        self, rows: list[list[int]], bounds: np.ndarray | None, index: list[int] | range
    ) -> dict[str, torch.Tensor]:
        """The padded features of texts ``index`` from :meth:`split`'s rows (with ``encoder_owner`` when chunking)."""
        if bounds is None:
            return self.pad([rows[i] for i in index])
        picked: list[list[int]] = []
        owner: list[int] = []
        for pos, i in enumerate(index):
            picked.extend(rows[bounds[i] : bounds[i + 1]])
            owner.extend([pos] * int(bounds[i + 1] - bounds[i]))
        return {**self.pad(picked), "encoder_owner": torch.tensor(owner, dtype=torch.long)}

    def pad(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        """Rows of ids -> the (B, S) features :meth:`tokenize` gives, padded on the tokenizer's side.

        Why: the text pipeline tokenizes each text once (to count and to cut) and pads batches
        from those ids, instead of tokenizing every text again per batch.
        """
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            raise ValueError("the light encoder's tokenizer defines no padding token")
        ids, lengths = flat_ids(rows)  # (N,), (B,)
        real = padded_positions(lengths, "left" if self.tokenizer.padding_side == "left" else "right")  # (B, S)
        input_ids = np.full(real.shape, int(pad_id), dtype=np.int64)
        input_ids[real] = ids
        mask = torch.from_numpy(real.astype(np.int64))
        return {"encoder_input_ids": torch.from_numpy(input_ids), "encoder_attention_mask": mask}

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        if self.long_texts == "chunk":
            rows, bounds, _ = self.split(texts)
            return self.pad_texts(rows, bounds, range(len(texts)))
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"encoder_input_ids": enc["input_ids"], "encoder_attention_mask": enc["attention_mask"]}


class LightEncoder(EncoderTokenizer, nn.Module):
    """Texts -> (B, e) vectors, the input of the Causal2Vec projector."""

    def __init__(
        self, model: nn.Module, tokenizer: Any, pooling: str = "mean", max_length: int = 512, long_texts: str = "cut"
    ) -> None:
        nn.Module.__init__(self)
        if pooling not in ("mean", "cls"):
            raise ValueError(f"encoder pooling must be 'mean' or 'cls', got '{pooling}'")
        self.model = model
        self.pooling = pooling
        limit = getattr(model.config, "max_position_embeddings", max_length)
        tok_limit = getattr(tokenizer, "model_max_length", max_length) or max_length
        EncoderTokenizer.__init__(self, tokenizer, int(min(max_length, limit, tok_limit)), long_texts)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, owner: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(R, S), (R, S) -> (B, e); ``owner`` (R,) maps windows to texts (B = R without it)."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (R, S, e)
        pooled = hidden[:, 0] if self.pooling == "cls" else mean_pool(hidden, attention_mask)  # (R, e)
        if owner is None:
            return pooled
        return average_windows(pooled, attention_mask.sum(1), owner)

    def encode_features(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, e) vectors of :meth:`tokenize`'s features, moved to this encoder's device."""
        dev = next(self.model.parameters()).device
        owner = feats.get("encoder_owner")
        return self(
            feats["encoder_input_ids"].to(dev),
            feats["encoder_attention_mask"].to(dev),
            None if owner is None else owner.to(dev),
        )


def average_windows(pooled: torch.Tensor, tokens: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """(R, e) window vectors, (R,) their real tokens, (R,) their text -> (B, e) token-weighted means."""
    w = tokens.to(pooled.dtype)[:, None]  # (R, 1)
    n = int(owner.max()) + 1
    total = pooled.new_zeros(n, pooled.shape[1]).index_add_(0, owner, pooled * w)  # (B, e)
    weight = pooled.new_zeros(n, 1).index_add_(0, owner, w)  # (B, 1)
    return total / weight
