"""What a model string means: the one place that decides it.

Every command and service takes a ``--model`` string (or a Python argument) that may be a saved
dec2vec folder, a shipped model, a recipe name, a registry base model (a backbone LLM or an
encoder-only model such as all-MiniLM-L6-v2) or a dec2vec repo on the hub. :func:`resolve_model`
says which, once, with a message that says what to do when it is none; the loaders
(:func:`dec2vec.loading.locate`, :func:`dec2vec.text_embedders.load_text_embedder`) act on its answer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import models, pretrained
from .config import CONFIG_NAME
from .errors import ModelNotFoundError
from .recipes import recipe_names
from .saving import ST_MODULE_TYPE

#: folder: a saved dec2vec folder (local, or a sentence-transformers save of one); shipped: inside the
#: package; recipe: an untrained recipe; hub: a dec2vec repo downloaded from the hub; encoder-only and
#: backbone: a registry base model (the first embeds as published, the second needs a recipe)
ModelKind = Literal["folder", "shipped", "recipe", "hub", "encoder-only", "backbone"]


@dataclass(frozen=True)
class ModelRef:
    """A model string and what it is: ``where`` is the folder to load, or the recipe or registry name."""

    ref: str
    kind: ModelKind
    where: Path | str

    @property
    def is_dec2vec(self) -> bool:
        """Whether ``Embedder.from_pretrained`` loads it (a folder to read or a recipe to build)."""
        return self.kind in ("folder", "shipped", "recipe", "hub")


def resolve_model(name_or_path: str | os.PathLike[str]) -> ModelRef:
    """What ``name_or_path`` is; a ModelNotFoundError naming the choices when it is nothing loadable.

    A local folder wins over a name it shadows; then shipped models, recipes, registry models and
    the hub, in that order.
    """
    ref = os.fspath(name_or_path)
    folder = Path(ref).expanduser()
    if (folder / CONFIG_NAME).is_file():
        return ModelRef(ref, "folder", folder)
    if folder.is_dir() and (inner := st_saved_folder(folder)) is not None:
        return ModelRef(ref, "folder", inner)
    if ref in pretrained.SHIPPED:
        return ModelRef(ref, "shipped", pretrained.path(ref))
    if ref in recipe_names():
        return ModelRef(ref, "recipe", ref)
    if folder.exists():
        raise ModelNotFoundError(f"'{ref}' is not a saved dec2vec model: {folder / CONFIG_NAME} is missing")
    if ref in models.REGISTRY:
        return ModelRef(ref, "encoder-only" if models.REGISTRY[ref].role == "encoder" else "backbone", ref)
    hub = _hub_folder(ref)
    if hub is not None:
        return ModelRef(ref, "hub", hub)
    raise ModelNotFoundError(
        f"'{ref}' is neither a saved dec2vec model folder nor a recipe; recipes: {', '.join(recipe_names())}"
    )


def not_an_embedder(name: str) -> str:
    """Why a registry model name is not something ``from_pretrained`` loads, and what to do instead."""
    if models.REGISTRY[name].role == "encoder":
        return (
            f"'{name}' is an encoder-only model, not a dec2vec embedder: `dec2vec embed --model {name}` embeds "
            f"with it as published (dec2vec.encoder_only.EncoderOnlyEmbedder); as Causal2Vec's light encoder: "
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
