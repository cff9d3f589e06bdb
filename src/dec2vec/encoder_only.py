"""Encoder-only registry models (all-MiniLM-L6-v2, all-mpnet-base-v2): the one type for them everywhere.

Why: ``dec2vec models list`` shows them, so users pass ``--model all-minilm-l6-v2``. They are not
decoders and take no recipe: a sentence-transformers model already is an embedder, with its own
pooling and length limit. :class:`EncoderOnlyEmbedder` runs one as published (the Causal2Vec light
encoder, :class:`~dec2vec.encoder.LightEncoder`, native pooling, ``sentence_bert_config.json``
limit, used alone) behind the surface of :class:`~dec2vec.Embedder` that the CLI, the index, the
server and evaluation use: ``encode`` / ``encode_iter`` with the same options (validation,
token-budget batches from the shared engine, truncation reports, unit-length rows), ``layouts``,
``tokenizer``, a settable ``max_length``, and an identity (``config``, ``state_dict``).

What differs from a recipe model is answered here and only here: it takes no instruction
(:func:`refuse_instruction`), writes the text once, and has no language model to answer with
(:func:`is_encoder_only`, :func:`text_copies`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .device import default_max_tokens, pick_device, pick_dtype
from .encoder import LightEncoder
from .engine import chunked, encode_all, plan_batches
from .errors import ConfigError, InputError, TruncationError
from .inputs import Layout
from .loading import load_encoder
from .pipeline import TruncationWarning, validate_texts
from .references import resolve_model

ENCODER_ONLY = "encoder-only"  # what an encoder's identity, `dec2vec serve` and /info give as its recipe


class InstructionRefused(InputError, ConfigError):
    """An instruction given to a model trained without one: refused rather than silently dropped.

    Both an InputError (the caller's request) and a ConfigError (what the Python API raised first).
    """


def instruction_refusal(name: str, flag: str = "instruction", hint: str = "send none") -> str:
    """The one message that says an encoder-only model takes no instruction, and what to do."""
    return f"{name} is an encoder-only model and takes no {flag} (it was trained without one); {hint}"


def refuse_instruction(name: str, instruction: str | None, flag: str = "instruction", hint: str = "send none") -> None:
    """An :class:`InstructionRefused` when ``instruction`` is given to the encoder-only model ``name``."""
    if instruction:
        raise InstructionRefused(instruction_refusal(name, flag, hint))


@dataclass(frozen=True)
class EncoderConfig:
    """The ``config`` facts an index identity and the server's /info read, for a model without a recipe."""

    backbone: str  # the registry name: the model that makes the vectors
    recipe: str = ENCODER_ONLY
    recipe_options: dict[str, Any] = field(default_factory=dict)
    encoder: str | None = None  # no second (light) encoder


class EncoderOnlyEmbedder:
    """A registry encoder with its native pooling: texts -> (n, dim) float32 rows, unit length by default."""

    def __init__(self, name: str, encoder: LightEncoder) -> None:
        self.name = name
        self.encoder = encoder.eval()
        self.config = EncoderConfig(backbone=name)
        self.prompts: dict[str, str] = {}  # it takes no instruction, so it has no named ones

    @classmethod
    def from_registry(
        cls, name: str, *, device: str | torch.device | None = None, dtype: str | None = None
    ) -> EncoderOnlyEmbedder:
        if resolve_model(name).kind != ENCODER_ONLY:
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

    @max_length.setter
    def max_length(self, value: int) -> None:  # the server lowers it to its per-input limit
        self.encoder.max_length = int(value)

    @property
    def tokenizer(self) -> Any:
        return self.encoder.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.encoder.parameters()).dtype

    def state_dict(self) -> dict[str, Any]:
        """The encoder's tensors: what the index's weight fingerprint hashes."""
        return self.encoder.state_dict()

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

    # ---- token layouts --------------------------------------------------------------------------
    def layouts(self, texts: list[str], instruction: str | None = None, truncate: bool = True) -> list[Layout]:
        """Each text's token ids (special tokens included), cut to ``max_length`` (warning) or refused (error)."""
        refuse_instruction(self.name, instruction)
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
        refuse_instruction(self.name, instruction, hint="embed without it")
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


def is_encoder_only(embedder: object) -> bool:
    """No instruction, one copy of the text, and no language model to answer with."""
    return isinstance(embedder, EncoderOnlyEmbedder)


def text_copies(embedder: Any) -> int:
    """How many times the model's input holds the text (echo writes it twice; an encoder once)."""
    return 1 if is_encoder_only(embedder) else embedder.recipe.text_copies
