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


class EncoderTokenizer:
    """The light encoder's tokenization half: ids counted, cut and padded, with no weights.

    Why apart from :class:`LightEncoder`: the text pipeline needs only this, and so does the ONNX
    loader (``dec2vec.export``), which runs the encoder's weights in onnxruntime instead.
    """

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(row) for row in self.token_ids(texts)]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's ids, special tokens included and not cut: their lengths tell which texts are too long."""
        # verbose=False: counting a long text is how truncation is detected, not an error worth a log line.
        return self.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]

    def cut_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's ids cut to ``max_length`` the tokenizer's way (its special tokens kept)."""
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def cut_once(self, texts: list[str]) -> tuple[list[list[int]], list[int]]:
        """Each text's ids cut to ``max_length`` the tokenizer's way, and the indices of those that were cut.

        Why one call: the tokenizer's overflow keeps what truncation removed as extra rows, so a
        text was cut exactly when it has more than one; counting and cutting then read one pass
        of the tokenizer per text instead of two (:meth:`token_ids`, then :meth:`cut_ids`).
        """
        enc = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            return_overflowing_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        sample = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)  # (R,) the text of each row
        first = np.flatnonzero(np.r_[True, sample[1:] != sample[:-1]])  # (n,) each text's kept row
        if len(first) != len(texts):
            raise RuntimeError(f"the light encoder's tokenizer returned {len(first)} rows for {len(texts)} texts")
        ids = enc["input_ids"]
        rows = [ids[r] for r in first.tolist()]
        long = np.flatnonzero(np.diff(np.r_[first, len(sample)]) > 1).tolist()  # texts with overflow rows
        return rows, long

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
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"encoder_input_ids": enc["input_ids"], "encoder_attention_mask": enc["attention_mask"]}


class LightEncoder(EncoderTokenizer, nn.Module):
    """Texts -> (B, e) vectors, the input of the Causal2Vec projector."""

    def __init__(self, model: nn.Module, tokenizer: Any, pooling: str = "mean", max_length: int = 512) -> None:
        nn.Module.__init__(self)
        if pooling not in ("mean", "cls"):
            raise ValueError(f"encoder pooling must be 'mean' or 'cls', got '{pooling}'")
        self.model = model
        self.pooling = pooling
        limit = getattr(model.config, "max_position_embeddings", max_length)
        tok_limit = getattr(tokenizer, "model_max_length", max_length) or max_length
        EncoderTokenizer.__init__(self, tokenizer, int(min(max_length, limit, tok_limit)))

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, S), (B, S) -> (B, e)."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, S, e)
        if self.pooling == "cls":
            return hidden[:, 0]
        return mean_pool(hidden, attention_mask)
