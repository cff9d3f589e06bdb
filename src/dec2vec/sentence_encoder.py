"""Encoder-only registry models (all-MiniLM-L6-v2, all-mpnet-base-v2) embedding on their own.

Why: ``dec2vec models list`` shows them, so users pass ``--model all-minilm-l6-v2``. They are not
decoders and take no recipe: a sentence-transformers model already is an embedder, with its own
pooling and length limit. :class:`SentenceEncoder` runs one as published — the Causal2Vec light
encoder (:class:`~dec2vec.encoder.LightEncoder`, native pooling, ``sentence_bert_config.json``
limit), used alone — behind the same ``encode`` / ``encode_iter`` as :class:`~dec2vec.Embedder`:
the same validation, token-budget batches, truncation reports and unit-length rows, so
``dec2vec embed`` and ``dec2vec info`` treat it like any other model.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import models
from .device import default_max_tokens, pick_device, pick_dtype
from .encoder import LightEncoder
from .engine import chunked, encode_all, plan_batches
from .errors import ConfigError, TruncationError
from .loading import load_encoder
from .pipeline import TruncationWarning, validate_texts


def is_sentence_encoder(ref: str | os.PathLike[str]) -> bool:
    """Whether ``ref`` names a registry encoder (and no local path of that name shadows it)."""
    name = os.fspath(ref)
    entry = models.REGISTRY.get(name)
    return entry is not None and entry.role == "encoder" and not Path(name).expanduser().exists()


class SentenceEncoder:
    """A registry encoder with its native pooling: texts -> (n, dim) float32 rows, unit length by default."""

    def __init__(self, name: str, encoder: LightEncoder) -> None:
        self.name = name
        self.encoder = encoder.eval()

    @classmethod
    def from_registry(
        cls, name: str, *, device: str | torch.device | None = None, dtype: str | None = None
    ) -> SentenceEncoder:
        if not is_sentence_encoder(name):
            raise ConfigError(f"'{name}' is not a registered encoder model; see `dec2vec models list`")
        dev = pick_device(device)
        # 512 is only a ceiling: the folder's sentence_bert_config.json sets the trained limit (256 for MiniLM)
        encoder = load_encoder(name, dtype=pick_dtype(dtype or "auto", dev), max_length=512)
        return cls(name, encoder.to(dev))

    # ---- facts ----------------------------------------------------------------------------------
    @property
    def embedding_dim(self) -> int:
        return self.encoder.dim

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.encoder.parameters()).dtype

    def num_parameters(self) -> dict[str, int]:
        return {"encoder": sum(p.numel() for p in self.encoder.parameters())}

    def describe(self) -> dict[str, Any]:
        """What ``dec2vec info`` prints (the keys of an Embedder's that apply to an encoder)."""
        params = self.num_parameters()
        return {
            "model": self.name,
            "kind": "encoder-only (sentence-transformers), no recipe",
            "attention": "bidirectional",
            "pooling": self.encoder.pooling,
            "encoder_architecture": type(self.encoder.model).__name__,
            "embedding_dim": self.embedding_dim,
            "max_length": self.max_length,
            "parameters": params,
            "parameters_total": sum(params.values()),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
        }

    # ---- encoding -------------------------------------------------------------------------------
    def encode(
        self,
        texts: str | Sequence[str],
        instruction: str | None = None,
        normalize: bool = True,
        *,
        max_tokens: int | None = None,
        max_batch_size: int | None = None,
        truncate: bool = True,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Embed texts: float32 (n, embedding_dim), rows in input order; as :meth:`Embedder.encode`."""
        texts = validate_texts(texts)  # every item checked before any work
        return encode_all(
            self.encode_iter,
            texts,
            show_progress,
            instruction=instruction,
            normalize=normalize,
            max_tokens=max_tokens,
            max_batch_size=max_batch_size,
            truncate=truncate,
        )

    def encode_iter(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        normalize: bool = True,
        *,
        chunk_size: int = 4096,
        max_tokens: int | None = None,
        max_batch_size: int | None = None,
        truncate: bool = True,
        show_progress: bool = False,
        total: int | None = None,
        on_truncated: Callable[[list[int]], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Embed a stream: one (len(chunk), D) array per ``chunk_size`` texts; as :meth:`Embedder.encode_iter`.

        ``instruction`` is refused rather than dropped: these models were trained without one, and
        silently embedding without the caller's instruction would hide a mistake.
        """
        if instruction:
            raise ConfigError(f"{self.name} takes no instruction (it was trained without one); embed without it")
        budget = max_tokens or default_max_tokens(self.device)
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=total, desc="encode", unit="text")
        start = 0
        try:
            for chunk in chunked(texts, chunk_size):
                chunk = validate_texts(chunk, offset=start)
                counts = self.encoder.count_tokens(chunk)
                cut = [i for i, n in enumerate(counts) if n > self.max_length]
                if cut and not truncate:
                    i = cut[0]
                    raise TruncationError(
                        f"item {start + i}: {counts[i]} tokens exceed the model's limit {self.max_length}",
                        index=start + i,
                    )
                out = np.empty((len(chunk), self.embedding_dim), dtype=np.float32)
                lengths = [min(n, self.max_length) for n in counts]
                with torch.inference_mode():
                    for idx in plan_batches(lengths, budget, max_batch_size or 1 << 30):
                        feats = self.encoder.tokenize([chunk[i] for i in idx])
                        ids = feats["encoder_input_ids"].to(self.device)  # (b, S)
                        mask = feats["encoder_attention_mask"].to(self.device)  # (b, S)
                        emb = self.encoder(ids, mask).float()  # (b, D)
                        if normalize:
                            emb = nn.functional.normalize(emb, dim=-1)
                        out[idx] = emb.cpu().numpy()
                        if progress is not None:
                            progress.update(len(idx))
                if cut and on_truncated is not None:
                    on_truncated([start + i for i in cut])
                elif cut:
                    warnings.warn(TruncationWarning([start + i for i in cut]), stacklevel=3)
                yield out
                start += len(chunk)
        finally:
            if progress is not None:
                progress.close()
