"""Load a saved dec2vec folder with ``sentence_transformers.SentenceTransformer``.

``modules.json`` (written by :func:`dec2vec.saving.write_st_files`) names :class:`Dec2VecModule`,
which wraps an :class:`~dec2vec.Embedder`, then sentence-transformers' own ``Normalize``:
``Embedder.encode`` returns unit vectors, and a model must not give other vectors through
sentence-transformers (its ``forward`` stays raw, as training needs). sentence-transformers'
``prompt`` becomes dec2vec's instruction, so ``model.encode(queries, prompt="…")`` formats it the
way the recipe was trained to see it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..embedder import Embedder


class Dec2VecModule(nn.Module):
    """A sentence-transformers module: texts -> features -> ``sentence_embedding``."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder

    @staticmethod
    def load(input_path: str) -> Dec2VecModule:  # one parameter: ST's plain-folder loading path
        return Dec2VecModule(Embedder.from_pretrained(input_path, device="cpu"))

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.embedder.save_pretrained(output_path)

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        return self.embedder.tokenize(inputs, instruction=prompt or None)

    def tokenize(self, texts: list[str], **kwargs: Any) -> dict[str, torch.Tensor]:
        return self.embedder.tokenize(texts)

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        # float32 like encode's output: in a bfloat16 model, Normalize would otherwise leave norms off by ~0.4%
        features["sentence_embedding"] = self.embedder(features).float()  # (B, D)
        return features

    def get_embedding_dimension(self) -> int:
        return self.embedder.embedding_dim

    def get_sentence_embedding_dimension(self) -> int:
        return self.embedder.embedding_dim

    @property
    def max_seq_length(self) -> int:
        return self.embedder.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        limit = getattr(self.embedder.backbone.config, "max_position_embeddings", None) or value
        self.embedder.max_length = min(int(value), int(limit))
