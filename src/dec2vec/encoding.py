"""``Embedder``'s texts-in, embeddings-out methods: layouts, features, ``encode`` and ``encode_iter``.

Why apart from :mod:`dec2vec.embedder`: that module builds, loads and saves a model; this one only
turns texts into tensors and embeddings through the model's :class:`~dec2vec.pipeline.TextPipeline`
and the encode engine. :class:`TextEncoding` is mixed into ``Embedder`` (an
:class:`~dec2vec.embedding_model.EmbeddingModel` with a ``pipeline``), so the public methods stay
``Embedder.encode`` and friends.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from . import engine
from .engine import EncodeOptions
from .inputs import Layout, TextTokenizer
from .pipeline import PaddingSide, TextPipeline, TruncationWarning, validate_texts


class TextEncoding:
    """Texts -> token layouts, features and embeddings, for a model with a ``pipeline``."""

    pipeline: TextPipeline

    # ---- texts -> tensors -----------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        """Longest backbone input in tokens, template included; longer texts are cut or refused."""
        return self.pipeline.max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.pipeline.max_length = value

    @property
    def text_tokenizer(self) -> TextTokenizer:
        return self.pipeline.tokenizer

    def layouts(self, texts: list[str], instruction: str | None = None, truncate: bool = True) -> list[Layout]:
        """Token layouts of validated texts, cut to ``max_length`` (warning) or refused (error)."""
        prepared = self.pipeline.prepare(texts, instruction, truncate)
        if prepared.truncated:
            warnings.warn(TruncationWarning(prepared.truncated), stacklevel=3)
        return prepared.layouts

    def tokenize(
        self,
        texts: Sequence[str],
        instruction: str | None = None,
        truncate: bool = True,
        padding_side: PaddingSide = "right",
    ) -> dict[str, torch.Tensor]:
        """One batch of features (CPU tensors) for :meth:`forward`."""
        prepared = self.pipeline.prepare(validate_texts(texts), instruction, truncate)
        if prepared.truncated:
            warnings.warn(TruncationWarning(prepared.truncated), stacklevel=2)
        return self.pipeline.features(prepared, padding_side=padding_side)

    # ---- texts -> embeddings --------------------------------------------------------------------
    def encode(
        self,
        texts: str | Sequence[str],
        instruction: str | None = None,
        normalize: bool = True,
        *,
        max_tokens: int | None = None,
        max_batch_size: int | None = None,
        truncate: bool = True,
        padding_side: PaddingSide = "right",
        packed: bool | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Embed texts: float32 array (n, embedding_dim), rows in input order.

        Batches hold at most ``max_tokens`` backbone tokens (default: 1024 on CPU, 32768 on CUDA)
        of length-sorted texts. ``instruction`` is written before every text with the recipe's
        template (queries usually get one, documents not). ``packed`` runs texts unpadded through
        the varlen attention kernel (default: where it exists, i.e. CUDA in half precision).
        """
        texts = validate_texts(texts)  # every item checked before any work
        return engine.encode_all(
            self.encode_iter,
            texts,
            show_progress,
            instruction=instruction,
            normalize=normalize,
            max_tokens=max_tokens,
            max_batch_size=max_batch_size,
            truncate=truncate,
            padding_side=padding_side,
            packed=packed,
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
        padding_side: PaddingSide = "right",
        packed: bool | None = None,
        show_progress: bool = False,
        total: int | None = None,
        on_truncated: Callable[[list[int]], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Embed a stream of texts: yields (len(chunk), D) float32 arrays, one per ``chunk_size`` texts, in order.

        Memory is bounded by the chunk and the token budget, not by the stream: a file of any size
        can be embedded to disk row block by row block. A background thread tokenizes and collates
        the next batches while the model runs the current one. Truncated texts are reported per
        chunk with a :class:`TruncationWarning` whose indices count from the start of the stream, or
        handed to ``on_truncated`` instead.
        """
        opts = EncodeOptions(
            instruction=instruction,
            normalize=normalize,
            chunk_size=chunk_size,
            max_tokens=max_tokens,
            max_batch_size=max_batch_size,
            truncate=truncate,
            padding_side=padding_side,
            packed=packed,
        )
        return engine.encode_stream(
            self, self.pipeline, texts, opts, show_progress=show_progress, total=total, on_truncated=on_truncated
        )

    def can_pack(self) -> bool:
        """Whether encode runs texts unpadded by default (see :func:`dec2vec.engine.can_pack`)."""
        return engine.can_pack(self, self.max_length)
