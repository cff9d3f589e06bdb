"""Load a saved dec2vec folder with ``sentence_transformers.SentenceTransformer``.

``modules.json`` names :class:`Dec2VecModule`, which wraps an :class:`~dec2vec.Embedder`, then
sentence-transformers' own ``Normalize``: ``Embedder.encode`` returns unit vectors, and a model
must not give other vectors through sentence-transformers (its ``forward`` stays raw, as training
needs). sentence-transformers' ``prompt`` becomes dec2vec's instruction, so
``model.encode(queries, prompt="…")`` formats it the way the recipe was trained to see it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

MODULE_TYPE = "dec2vec.integrations.sentence_transformers.Dec2VecModule"
# The name every sentence-transformers version resolves (all-MiniLM-L6-v2's own modules.json uses it).
# Its path is the folder itself: Normalize has no weights, and finding no config there it takes its
# defaults; a subfolder would be an empty one, which neither wheels nor slim exports keep.
NORMALIZE = {"idx": 1, "name": "1", "path": "", "type": "sentence_transformers.models.Normalize"}


def write_st_files(folder: Path, embedding_dim: int) -> None:
    modules = [{"idx": 0, "name": "0", "path": "", "type": MODULE_TYPE}, NORMALIZE]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    st_config = {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2) + "\n")


class Dec2VecModule(nn.Module):
    """A sentence-transformers module: texts -> features -> ``sentence_embedding``."""

    def __init__(self, embedder: Any) -> None:
        super().__init__()
        self.embedder = embedder

    @staticmethod
    def load(input_path: str) -> Dec2VecModule:  # one parameter: ST's plain-folder loading path
        from ..embedder import Embedder

        return Dec2VecModule(Embedder.from_pretrained(input_path, device="cpu"))

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.embedder.save_pretrained(output_path)

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        return self.embedder.tokenize(inputs, instruction=prompt or None)

    def tokenize(self, texts: list[str], **kwargs: Any) -> dict[str, torch.Tensor]:
        return self.embedder.tokenize(texts)

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        features["sentence_embedding"] = self.embedder(features)
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
