"""``Embedder``: the public face of dec2vec, text embeddings from any causal LM with any recipe.

Flow: texts -> token layouts (pipeline) -> length-sorted token-budget batches (engine) -> backbone
run causally or bidirectionally (model, attention) -> pooled by the recipe -> numpy, in input order.
This class only joins those parts: the weights and forward pass are :class:`EmbeddingModel`'s,
texts to embeddings are :class:`~dec2vec.encoding.TextEncoding`'s (over :class:`TextPipeline` and
the engine), and folders are read by :mod:`.loading` and written by :mod:`.saving`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import loading, models
from .config import EmbedderConfig
from .device import inference_dtype, pick_device, pick_dtype
from .embedding_model import EmbeddingModel
from .encoder import LightEncoder
from .encoding import TextEncoding
from .errors import ConfigError
from .pipeline import TextPipeline
from .quantize import Quantization, check_mode, quantize_int8
from .saving import save_folder


class Embedder(TextEncoding, EmbeddingModel):
    """Text embeddings from a causal LM with a registered recipe.

    Build one with :meth:`from_recipe` (untrained, any backbone) or :meth:`from_pretrained`
    (a saved folder, or a recipe name on the default backbone and encoder), then call :meth:`encode`
    (texts in, embeddings out: :class:`~dec2vec.encoding.TextEncoding`).
    """

    def __init__(
        self,
        config: EmbedderConfig,
        backbone: nn.Module,
        tokenizer: Any,
        encoder: LightEncoder | None = None,
        heads: nn.ModuleDict | None = None,
    ) -> None:
        super().__init__(config, backbone, encoder, heads)
        self.tokenizer = tokenizer
        limit = getattr(backbone.config, "max_position_embeddings", None)
        max_length = min(config.max_length, limit) if limit else config.max_length
        self.pipeline = TextPipeline(self.recipe, tokenizer, self.encoder, max_length)
        self._adapter_dir: Path | None = None
        self.quantization: Quantization | None = None  # set by quantize(): int8 layers can't be saved
        # named instructions ("query" -> "Given a question, ..."; "document" -> ""): saved with the
        # model for sentence-transformers' prompt_name and the server's TEI prompt_name
        self.prompts: dict[str, str] = {}

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_recipe(
        cls,
        recipe: str,
        backbone: str | os.PathLike[str] = models.DEFAULT_BACKBONE,
        encoder: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str = "auto",
        seed: int = 0,
        max_length: int = 512,
        quantize: str | None = None,
        encoder_long_texts: str = "cut",
        **recipe_options: Any,
    ) -> Embedder:
        """An untrained embedder: ``recipe`` on ``backbone`` (and ``encoder`` for Causal2Vec)."""
        config = loading.recipe_config(
            recipe,
            backbone,
            encoder,
            dtype=dtype,
            seed=seed,
            max_length=max_length,
            recipe_options=recipe_options,
            encoder_long_texts=encoder_long_texts,
        )
        dev = pick_device(device)
        check_mode(quantize, dev, pick_dtype(config.dtype, dev))  # before a minute of loading
        emb = cls._build(config, config.backbone, config.encoder, dev)
        if quantize:
            emb.quantize(quantize)
        return emb

    @classmethod
    def _build(
        cls, config: EmbedderConfig, backbone_ref: str, encoder_ref: str | None, device: torch.device
    ) -> Embedder:
        """The parts loaded onto ``device``, resolved once by the caller (from_recipe, from_pretrained)."""
        parts = loading.load_parts(config, backbone_ref, encoder_ref, device)
        return cls(config, parts.backbone, parts.tokenizer, parts.encoder).to(parts.device).eval()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
    ) -> Embedder:
        """A saved dec2vec folder, a shipped model (`dec2vec.pretrained`), or a recipe name (untrained).

        ``dtype=None`` takes the one default every entry point shares (the CLI, the server, the
        index and this API): :func:`~dec2vec.device.inference_dtype`, i.e. bfloat16 on a CPU that
        runs it natively, else the folder's saved dtype. Why one rule: vectors from two entry points
        of the same model must be comparable. ``quantize="int8"`` (CPU, float32) quantizes the linear
        layers that keep their outputs within a measured error (:mod:`dec2vec.quantize`); the rest
        stay float.
        """
        dtype = inference_dtype(dtype, quantize, device)
        where = loading.locate(name_or_path)
        if isinstance(where, str):  # a recipe name
            return cls.from_recipe(where, device=device, dtype=dtype or "auto", quantize=quantize)
        saved = loading.read_saved(where, dtype)
        dev = pick_device(device)
        check_mode(quantize, dev, pick_dtype(saved.config.dtype, dev))
        emb = cls._build(saved.config, saved.backbone_ref, saved.encoder_ref, dev)
        if saved.adapter is not None:
            emb.backbone = loading.merge_adapter(emb.backbone, saved.adapter)
            emb.config.adapter = None  # merged: a re-save writes the merged backbone and no adapter
        loading.load_heads(emb.heads, saved, emb.device, emb.dtype)
        emb.prompts = loading.read_prompts(saved.folder)
        if quantize:
            emb.quantize(quantize)
        return emb

    def quantize(self, mode: str = "int8", **options: Any) -> Quantization:
        """Quantize for CPU inference in place (see :mod:`dec2vec.quantize`); returns what was done."""
        if self.quantization is not None:
            raise ConfigError(f"this model is already quantized ({self.quantization.mode})")
        check_mode(mode, self.device, self.dtype)
        self.quantization = quantize_int8(self, **options)
        return self.quantization

    def attach_adapter(self, adapter: Path) -> None:
        """Save a (not merged) peft adapter folder beside the base backbone on the next save."""
        self._adapter_dir = Path(adapter)
        self.config.adapter = "adapter"

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write a self-contained folder (safetensors + JSON) atomically: temp folder, then rename.

        It also loads with ``SentenceTransformer(folder, trust_remote_code=True)``.
        """
        if self.quantization is not None:
            raise ConfigError(
                "a quantized model is not saved (its int8 layers are made at load time): save the float model "
                "and load it with quantize='int8'"
            )
        save_folder(
            folder,
            config=self.config,
            backbone=self.backbone,
            tokenizer=self.tokenizer,
            encoder=self.encoder,
            heads=self.heads,
            adapter_dir=self._adapter_dir,
            prompts=self.prompts,
        )
