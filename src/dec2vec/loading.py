"""Finding and loading the weights behind an embedder: names, folders, the hub, adapters, heads.

``Embedder.from_pretrained`` accepts many kinds of reference (a saved folder, a shipped
model, a recipe name, a hub repo); :func:`locate` gives the one to load, as
:func:`~dec2vec.references.resolve_model` decides. The other functions load the parts (backbone, light
encoder, LoRA adapter, heads); ``Embedder`` assembles them, so nothing here imports it.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import models
from .attention import check_attn_implementation
from .config import FORMAT_VERSION, EmbedderConfig
from .device import pick_dtype
from .encoder import LightEncoder, native_pooling
from .errors import ModelNotFoundError
from .recipes import get_recipe
from .references import not_an_embedder, resolve_model
from .saving import HEADS_NAME, ST_CONFIG_NAME


def _safetensors_error() -> type[Exception]:
    """safetensors' error for a damaged or truncated file (a plain Exception subclass, hence named)."""
    from safetensors import SafetensorError

    return SafetensorError


def _damaged(where: str | os.PathLike[str], e: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(f"{where}: a weights file is damaged or truncated ({e}); copy or save the model again")


def _load_backbone(ref: str, dtype: torch.dtype) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = models.weights_folder(ref)
    kwargs: dict[str, Any] = {}
    if isinstance(where, Path) and (gguf := models.gguf_in(where)):
        kwargs["gguf_file"] = gguf
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, attn_implementation="sdpa", **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    except (OSError, ValueError, ImportError) as e:
        raise ModelNotFoundError(f"could not load backbone '{ref}': {e}") from e
    except _safetensors_error() as e:
        raise _damaged(where, e) from e
    check_attn_implementation(model)
    return model, tokenizer


def load_encoder(
    ref: str, *, dtype: torch.dtype = torch.float32, max_length: int = 512, pooling: str | None = None
) -> LightEncoder:
    """A sentence-transformers style encoder (registry name, folder or hub id) as a :class:`LightEncoder`.

    ``max_length`` is a ceiling: a folder's ``sentence_bert_config.json`` may lower it (256 for
    all-MiniLM-L6-v2); ``pooling`` (``mean``, ``cls``) overrides the folder's native pooling.
    """
    return _load_encoder(ref, dtype, max_length, pooling)  # through the module name, so tests can stub it


def _load_encoder(ref: str, dtype: torch.dtype, max_length: int, pooling: str | None) -> LightEncoder:
    from transformers import AutoModel, AutoTokenizer

    where = models.weights_folder(ref)
    try:
        model = AutoModel.from_pretrained(where, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError, ImportError) as e:
        raise ModelNotFoundError(f"could not load light encoder '{ref}': {e}") from e
    except _safetensors_error() as e:
        raise _damaged(where, e) from e
    if isinstance(where, Path):
        pooling = pooling or native_pooling(where)
        st_cfg = where / "sentence_bert_config.json"
        if st_cfg.is_file():  # the encoder's trained length (256 for all-MiniLM-L6-v2)
            max_length = min(max_length, int(json.loads(st_cfg.read_text()).get("max_seq_length", max_length)))
    return LightEncoder(model, tokenizer, pooling or "mean", max_length)


def locate(name_or_path: str | os.PathLike[str]) -> Path | str:
    """A saved folder to load (local, shipped or downloaded), or the name of a recipe to build untrained.

    :func:`~dec2vec.references.resolve_model` decides what the string is; a registry base model is
    refused here with what to do instead (it is not a dec2vec embedder).
    """
    found = resolve_model(name_or_path)
    if not found.is_dec2vec:
        raise ModelNotFoundError(not_an_embedder(found.ref))
    return found.where


def check_model(name_or_path: str | os.PathLike[str]) -> Path | str:
    """:func:`locate`, and a saved folder's ``dec2vec.json`` read: a damaged one fails before any work."""
    where = locate(name_or_path)
    if isinstance(where, Path):
        EmbedderConfig.load(where)
    return where


def recipe_config(
    recipe: str,
    backbone: str | os.PathLike[str],
    encoder: str | os.PathLike[str] | None,
    *,
    dtype: str,
    seed: int,
    max_length: int,
    recipe_options: dict[str, Any],
    encoder_long_texts: str = "cut",
) -> EmbedderConfig:
    """The config of an untrained ``recipe``; bad options fail here, before any weights load."""
    recipe_cls = get_recipe(recipe)
    if recipe_cls.contextual_token and encoder is None:
        encoder = models.DEFAULT_ENCODER
    config = EmbedderConfig(
        recipe=recipe,
        backbone=os.fspath(backbone),
        encoder=os.fspath(encoder) if recipe_cls.contextual_token and encoder is not None else None,
        recipe_options=dict(recipe_options),
        max_length=max_length,
        seed=seed,
        dtype=dtype,
        encoder_long_texts=encoder_long_texts,
    )
    recipe_cls.Options.from_dict(config.recipe_options)
    return config


@dataclass(frozen=True)
class SavedModel:
    """What a saved folder holds and where its base models come from."""

    folder: Path
    config: EmbedderConfig  # upgraded to today's format, with the caller's dtype
    backbone_ref: str  # the folder's backbone/, or (a slim folder) the base model it names
    encoder_ref: str | None
    adapter: Path | None  # a LoRA adapter to merge into the backbone


def read_saved(folder: Path, dtype: str | None) -> SavedModel:
    """The config of a saved folder, upgraded: options an older format left out keep that format's behaviour."""
    config = EmbedderConfig.load(folder)
    for key, value in get_recipe(config.recipe).Options.legacy.get(config.format_version, {}).items():
        config.recipe_options.setdefault(key, value)
    config.format_version = FORMAT_VERSION
    if dtype is not None:
        config.dtype = dtype
    # a slim folder (dec2vec.pretrained) holds only the trained parts and names its base models
    backbone_ref = str(folder / "backbone") if (folder / "backbone").is_dir() else config.backbone
    enc_ref = None
    if config.encoder is not None:
        enc_ref = str(folder / "encoder") if (folder / "encoder").is_dir() else config.encoder
    adapter = folder / config.adapter if config.adapter else None
    return SavedModel(folder, config, backbone_ref, enc_ref, adapter)


def read_prompts(folder: Path) -> dict[str, str]:
    """The folder's named instructions (``{"query": "Given a question, ..."}``), as sentence-transformers saves them.

    An unreadable or missing file gives none: the prompts are a convenience, the model loads without them.
    """
    try:
        prompts = json.loads((folder / ST_CONFIG_NAME).read_text()).get("prompts") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in prompts.items()} if isinstance(prompts, dict) else {}


@dataclass(frozen=True)
class Parts:
    """Loaded weights for an ``Embedder``, in the dtype the config asks for on ``device``."""

    backbone: nn.Module
    tokenizer: Any
    encoder: LightEncoder | None
    device: torch.device


def load_parts(config: EmbedderConfig, backbone_ref: str, encoder_ref: str | None, device: torch.device) -> Parts:
    """Load backbone and light encoder; the encoder's pooling and limit are written into ``config``.

    Why into the config: a re-saved model then loads the same way without the source folder's extras.
    """
    dev = device  # resolved once, by the Embedder constructor that calls this
    dt = pick_dtype(config.dtype, dev)
    model, tokenizer = _load_backbone(backbone_ref, dt)
    enc = None
    if encoder_ref is not None:
        enc = _load_encoder(encoder_ref, dt, config.encoder_max_length, config.encoder_pooling)
        config.encoder_pooling = enc.pooling
        config.encoder_max_length = enc.max_length
        enc.long_texts = config.encoder_long_texts
    return Parts(model, tokenizer, enc, dev)


def merge_adapter(backbone: nn.Module, adapter: Path) -> nn.Module:
    """The backbone with a saved LoRA adapter applied and merged: a plain model again."""
    try:
        from peft import PeftModel
    except ImportError as e:
        raise ModelNotFoundError(f"{adapter} is a LoRA adapter; loading it needs peft: pip install peft") from e
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing` while wrapping the model;
        # the warning is about peft's code, says nothing to a user, and came on every load
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        try:
            return PeftModel.from_pretrained(backbone, adapter).merge_and_unload()
        except _safetensors_error() as e:
            raise _damaged(adapter, e) from e
        except (OSError, ValueError) as e:  # a missing or malformed adapter_config.json
            raise ModelNotFoundError(f"{adapter}: could not load the LoRA adapter ({e})") from e


def load_heads(heads: nn.ModuleDict, saved: SavedModel, device: torch.device, dtype: torch.dtype) -> None:
    """Fill the recipe's heads from ``heads.safetensors``; a recipe with heads needs the file."""
    from safetensors.torch import load_file

    if not len(heads):
        return
    heads_file = saved.folder / HEADS_NAME
    if not heads_file.is_file():
        raise ModelNotFoundError(f"{saved.folder}: {HEADS_NAME} is missing for recipe '{saved.config.recipe}'")
    try:
        state = load_file(heads_file, device=str(device))
    except _safetensors_error() as e:
        raise _damaged(heads_file, e) from e
    try:
        heads.load_state_dict(state, strict=True)
    except RuntimeError as e:  # missing, unexpected or mis-shaped tensors: not this recipe's heads
        why = " ".join(str(e).split())[:300]
        raise ModelNotFoundError(f"{heads_file}: does not hold this recipe's heads ({why})") from e
    heads.to(dtype=dtype)
