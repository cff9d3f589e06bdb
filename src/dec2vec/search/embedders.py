"""The two kinds of model an index and the server embed with: a dec2vec ``Embedder``, or a registry encoder.

Why a subclass here: :class:`~dec2vec.sentence_encoder.SentenceEncoder` embeds as ``dec2vec embed``
needs. The index and the server also ask their model for token layouts (to count tokens and to cut
or refuse over-long texts), its tokenizer (chunks are measured in the model's own tokens), a
settable ``max_length``, and an identity (``config`` and ``state_dict``: which model made an
index's vectors). ``Embedder`` has all of these; :class:`EncoderEmbedder` adds them to
SentenceEncoder under the same names, so the indexer, the batcher and the app need no branch on
the kind of model. What does differ (an encoder takes no instruction, writes the text once, and
has no language model to answer with) is asked through the functions below.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..embedder import Embedder
from ..errors import InputError, TruncationError
from ..inputs import Layout
from ..pipeline import TruncationWarning, validate_texts
from ..sentence_encoder import SentenceEncoder, is_sentence_encoder
from .defaults import DEFAULT_INSTRUCTION

ENCODER_ONLY = "encoder-only"  # what an encoder's identity and /info give as its recipe


@dataclass(frozen=True)
class EncoderConfig:
    """The ``config`` facts an index identity and the server's /info read, for a model without a recipe."""

    backbone: str  # the registry name: the model that makes the vectors
    recipe: str = ENCODER_ONLY
    recipe_options: dict[str, Any] = field(default_factory=dict)
    encoder: str | None = None  # no second (light) encoder


class EncoderEmbedder(SentenceEncoder):
    """A registry encoder (all-MiniLM-L6-v2 …) with the surface of an ``Embedder`` that indexes and servers use."""

    def __init__(self, name: str, encoder: Any) -> None:
        super().__init__(name, encoder)
        self.config = EncoderConfig(backbone=name)
        self.prompts: dict[str, str] = {}  # an encoder takes no instruction, so it has no named ones

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    @max_length.setter
    def max_length(self, value: int) -> None:  # the server lowers it to its per-input limit
        self.encoder.max_length = int(value)

    @property
    def tokenizer(self) -> Any:
        return self.encoder.tokenizer

    def state_dict(self) -> dict[str, Any]:
        """The encoder's tensors: what the index's weight fingerprint hashes."""
        return self.encoder.state_dict()

    def layouts(self, texts: list[str], instruction: str | None = None, truncate: bool = True) -> list[Layout]:
        """Each text's token ids (special tokens included), cut to ``max_length`` (warning) or refused (error)."""
        if instruction:
            raise InputError(f"{self.name} takes no instruction (it was trained without one); send none")
        texts = validate_texts(texts)
        rows = self.encoder.token_ids(texts)
        cut = [i for i, row in enumerate(rows) if len(row) > self.max_length]
        if cut and not truncate:
            i = cut[0]
            raise TruncationError(
                f"item {i}: {len(rows[i])} tokens exceed the model's limit {self.max_length}; "
                "shorten the text or allow truncation",
                index=i,
            )
        if cut:
            for i, row in zip(cut, self.encoder.cut_ids([texts[i] for i in cut]), strict=True):
                rows[i] = row
            warnings.warn(TruncationWarning(cut), stacklevel=2)
        return [Layout(ids=tuple(row), pooled=(1,) * len(row), eos_pos=len(row) - 1) for row in rows]


TextEmbedder = Embedder | EncoderEmbedder


def load_embedder(
    model: str | os.PathLike[str],
    *,
    device: str | None = None,
    dtype: str | None = None,
    quantize: str | None = None,
) -> TextEmbedder:
    """A registry encoder by name (``all-minilm-l6-v2``), else whatever ``Embedder.from_pretrained`` loads.

    A dec2vec model with no dtype asked for loads in :func:`~dec2vec.device.inference_dtype`'s
    choice (bfloat16 on CPUs that run it natively), as ``Embedder.from_pretrained`` does.
    """
    if is_sentence_encoder(model):
        if quantize:
            raise InputError(f"--quantize applies to dec2vec models, not to the registry encoder '{model}'")
        return EncoderEmbedder.from_registry(os.fspath(model), device=device, dtype=dtype)
    return Embedder.from_pretrained(model, device=device, dtype=dtype, quantize=quantize)


def is_encoder_only(embedder: TextEmbedder) -> bool:
    """No instruction, one copy of the text, and no language model to answer with."""
    return isinstance(embedder, EncoderEmbedder)


def text_copies(embedder: TextEmbedder) -> int:
    """How many times the model's input holds the text (echo writes it twice)."""
    return 1 if isinstance(embedder, EncoderEmbedder) else embedder.recipe.text_copies


def query_instruction(embedder: TextEmbedder, instruction: str | None) -> str | None:
    """The instruction to embed a query with: the default one is dropped for a model that takes none.

    Any other instruction is the caller's choice, so an encoder refuses it rather than ignore it.
    """
    if not instruction or not is_encoder_only(embedder):
        return instruction or None
    if instruction == DEFAULT_INSTRUCTION:
        return None
    raise InputError(
        f"{embedder.config.backbone} is an encoder-only model and takes no instruction; search without one "
        "(leave out --instruction, or pass --no-instruction)"
    )
