"""The causal LM that ``ask`` writes answers with: the embedder's *base* language model.

Why not simply ``embedder.backbone``: a trained dec2vec model carries a LoRA adapter learned for
embedding, and that adapter wrecks the LM's writing. Measured on the shipped
causal2vec-smollm2-minilm (adapter merged at load), the same RAG prompts gave "William
Shakespeare wrote Pride and Prejudice" and "Mount Everest is the tallest mountain in North
America", where the base SmolLM2 answered "Jane Austen" and "Denali". So:

- a backbone that is a peft model generates inside ``disable_adapter()``: the base weights, with
  nothing copied (a model being trained, or one wrapped by the caller);
- a saved model whose adapter ``Embedder.from_pretrained`` merged into the backbone has lost its
  base weights in memory: its base backbone is loaded again, next to it, for generation only;
- any other backbone is the base LM already (an untrained recipe: dec2vec's bidirectional
  attention exists only inside its embedding forward, so ``generate`` is the untouched model).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from torch import nn

from .. import loading
from ..embedder import Embedder
from ..encoder_only import is_encoder_only
from ..errors import ModelNotFoundError
from ..generation import greedy_continuations
from ..text_embedders import TextEmbedder


def is_peft_model(model: nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # without peft installed, no model can be a peft model
        return False
    return isinstance(model, PeftModel)


@contextmanager
def base_weights(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with its LoRA adapters switched off for the block when it is a peft model; as it is otherwise."""
    if not is_peft_model(model):
        yield model
        return
    with model.disable_adapter():
        yield model


class LanguageModel:
    """A causal LM and its tokenizer; :meth:`generate` always runs the base weights (see the module docstring)."""

    def __init__(self, model: nn.Module, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer

    @property
    def context_window(self) -> int | None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        return int(limit) if limit else None

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """The greedy continuation of each prompt (new text only), with any adapter disabled."""
        with base_weights(self.model) as model:
            return greedy_continuations(model, self.tokenizer, prompts, max_new_tokens=max_new_tokens)


def merged_base(model_ref: str | None, embedder: Embedder) -> nn.Module | None:
    """The base backbone of a saved model whose LoRA adapter was merged at load; None for any other model."""
    if model_ref is None:
        return None
    try:
        where = loading.locate(model_ref)
    except ModelNotFoundError:  # not loadable by reference any more: generate with what is in memory
        return None
    if not isinstance(where, Path):
        return None  # a recipe name: an untrained model, no adapter
    saved = loading.read_saved(where, None)
    if saved.adapter is None:
        return None
    base, _ = loading._load_backbone(saved.backbone_ref, embedder.dtype)
    return base.to(embedder.device).eval()


def language_model_of(embedder: TextEmbedder, model_ref: str | None = None) -> LanguageModel | None:
    """The base LM to answer with for an index's model, or None when it has none (an encoder-only model).

    ``model_ref`` (the index's) tells whether the backbone in memory had an adapter merged into it.
    """
    if is_encoder_only(embedder):
        return None
    embedder = cast(Embedder, embedder)  # not encoder-only: a dec2vec Embedder
    base = None if is_peft_model(embedder.backbone) else merged_base(model_ref, embedder)
    return LanguageModel(base if base is not None else embedder.backbone, embedder.tokenizer)
