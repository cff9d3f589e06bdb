"""Finding and loading the weights behind an embedder: names, folders, the hub, adapters, heads.

``Embedder.from_pretrained`` accepts many kinds of reference (a saved folder, a shipped
model, a recipe name, a hub repo); :func:`locate` decides which one a string is, with a message
that says what to do when it is none. The other functions load the parts (backbone, light
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

from . import models, pretrained
from .attention import check_attn_implementation
from .config import CONFIG_NAME, FORMAT_VERSION, EmbedderConfig
from .device import pick_device, pick_dtype
from .encoder import LightEncoder, native_pooling
from .errors import ModelNotFoundError
from .recipes import get_recipe, recipe_names
from .saving import HEADS_NAME, ST_CONFIG_NAME, ST_MODULE_TYPE


def _safetensors_error() -> type[Exception]:
    """safetensors' error for a damaged or truncated file (a plain Exception subclass, hence named)."""
    from safetensors import SafetensorError

    return SafetensorError


def _damaged(where: str | os.PathLike[str], e: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(f"{where}: a weights file is damaged or truncated ({e}); copy or save the model again")


def _load_backbone(ref: str, dtype: torch.dtype) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = models.resolve(ref)
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

    where = models.resolve(ref)
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


def _hub_folder(ref: str) -> Path | None:
    """A saved dec2vec model on the Hugging Face hub, downloaded; None when it cannot be had."""
    if ref.count("/") != 1 or ref.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        hf_hub_download(ref, CONFIG_NAME)  # cheap check first: never download a plain LLM repo
        return Path(snapshot_download(ref))
    except Exception:  # offline, no such repo, not a dec2vec repo, no access: the caller's message covers them
        return None


def _not_an_embedder(name: str) -> str:
    """Why a registry model name is not something ``from_pretrained`` loads, and what to do instead."""
    if models.REGISTRY[name].role == "encoder":
        return (
            f"'{name}' is an encoder-only model, not a dec2vec embedder: `dec2vec embed --model {name}` embeds "
            f"with it as published (dec2vec.sentence_encoder.SentenceEncoder); as Causal2Vec's light encoder: "
            f"Embedder.from_recipe('causal2vec', encoder='{name}')"
        )
    return (
        f"'{name}' is a backbone LLM, not a dec2vec embedder: give it a recipe, "
        f"e.g. Embedder.from_recipe('mean', backbone='{name}'), or train one (dec2vec train)"
    )


def st_saved_folder(folder: Path) -> Path | None:
    """The dec2vec folder inside a folder that ``SentenceTransformer.save`` wrote, else None.

    sentence-transformers saves each module in its own sub-folder (``0_Dec2VecModule/``, then
    ``1_Normalize/``) and names them in ``modules.json``; the dec2vec module's sub-folder is a
    complete dec2vec folder, so loading it gives the same model.
    """
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    for module in modules if isinstance(modules, list) else []:
        if isinstance(module, dict) and module.get("type") == ST_MODULE_TYPE and module.get("path"):
            inner = folder / str(module["path"])
            if (inner / CONFIG_NAME).is_file():
                return inner
    return None


def locate(name_or_path: str | os.PathLike[str]) -> Path | str:
    """A saved folder to load (local, shipped or downloaded), or the name of a recipe to build untrained."""
    ref = os.fspath(name_or_path)
    folder = Path(ref).expanduser()
    if (folder / CONFIG_NAME).is_file():
        return folder
    if folder.is_dir() and (inner := st_saved_folder(folder)) is not None:
        return inner
    if ref in pretrained.SHIPPED:
        return pretrained.path(ref)
    if ref in recipe_names():
        return ref
    if folder.exists():
        raise ModelNotFoundError(f"'{ref}' is not a saved dec2vec model: {folder / CONFIG_NAME} is missing")
    if ref in models.REGISTRY:
        raise ModelNotFoundError(_not_an_embedder(ref))
    hub = _hub_folder(ref)
    if hub is not None:
        return hub
    raise ModelNotFoundError(
        f"'{ref}' is neither a saved dec2vec model folder nor a recipe; recipes: {', '.join(recipe_names())}"
    )


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


def load_parts(
    config: EmbedderConfig, backbone_ref: str, encoder_ref: str | None, device: str | torch.device | None
) -> Parts:
    """Load backbone and light encoder; the encoder's pooling and limit are written into ``config``.

    Why into the config: a re-saved model then loads the same way without the source folder's extras.
    """
    dev = pick_device(device)
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
