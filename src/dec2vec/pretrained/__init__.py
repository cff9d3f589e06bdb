"""Shipped models: trained models inside the dec2vec package, among them the default model of the CLI and server.

Only the small trained parts ship (a LoRA adapter, heads such as Causal2Vec's projector, a model
card): a *slim* dec2vec folder whose ``dec2vec.json`` names its backbone and light encoder by
registry name, so the base weights still come from their registry packages (``dec2vec models
pull``) and nothing is downloaded at load. ``export_slim`` turns a trained run's ``model/`` folder
(saved with ``merge_on_save: false``) into one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..config import CONFIG_NAME, EmbedderConfig
from ..errors import ConfigError, ModelNotFoundError
from ..foundations.files import atomic_folder

HERE = Path(__file__).resolve().parent

#: name -> folder inside this package
SHIPPED: dict[str, str] = {
    "causal2vec-smollm2-minilm": "causal2vec-smollm2-minilm",
}
#: what `dec2vec embed`, `dec2vec serve` and `make demo` use when no --model is given
DEFAULT_MODEL = "causal2vec-smollm2-minilm"
#: files a slim folder may hold besides the adapter folder
SLIM_FILES = ("dec2vec.json", "heads.safetensors", "training.json", "modules.json", "config_sentence_transformers.json")


def names() -> list[str]:
    return sorted(SHIPPED)


def path(name: str) -> Path:
    """The shipped folder of ``name``; a clear error if the name is unknown or its files are missing."""
    if name not in SHIPPED:
        raise ModelNotFoundError(f"'{name}' is not a shipped dec2vec model; shipped: {', '.join(names())}")
    folder = HERE / SHIPPED[name]
    if not (folder / CONFIG_NAME).is_file():
        raise ModelNotFoundError(f"shipped model '{name}' is incomplete: {folder / CONFIG_NAME} is missing")
    return folder


def export_slim(
    model_dir: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    card: str | None = None,
    *,
    allow_local: bool = False,
    extra: dict[str, str] | None = None,
) -> Path:
    """Copy the trained parts of a saved model into ``dest`` (atomically), leaving the base weights out.

    The backbone and encoder must be references that resolve on another machine (a registry name
    or a hub id), not a local folder, or the slim folder would not load elsewhere (``allow_local``
    accepts one, for a shared model folder). The encoder must have been frozen: a trained encoder's
    weights live in the saved ``encoder/`` and are not exported. ``extra`` adds small text files.
    """
    src = Path(model_dir)
    config = EmbedderConfig.load(src)
    for role, ref in (("backbone", config.backbone), ("encoder", config.encoder)):
        if ref is not None and not allow_local and (Path(ref).expanduser().exists() or os.path.isabs(ref)):
            raise ConfigError(f"{src}: the {role} is a local folder ({ref}); a slim folder must name a registry model")
    if config.adapter is None:
        raise ConfigError(
            f"{src}: no LoRA adapter: the backbone was merged (merge_on_save: true) or not trained with LoRA; "
            "a slim folder needs the adapter kept (merge_on_save: false)"
        )
    training = json.loads((src / "training.json").read_text()) if (src / "training.json").is_file() else {}
    if training.get("encoder_mode", "frozen") != "frozen":
        raise ConfigError(f"{src}: the light encoder was trained ({training['encoder_mode']}); it cannot be left out")
    out = Path(dest).resolve()
    with atomic_folder(out, mode=0o755) as tmp:  # a shipped model is for everyone to read
        for name in SLIM_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        if (src / "modules.json").is_file():
            # written afresh, not copied: a run saved by older code lacks the Normalize module; the
            # source's named prompts (``prompt_name="query"``) are kept
            from ..loading import read_prompts
            from ..saving import write_st_files

            write_st_files(tmp, read_prompts(src))
        if config.adapter:
            shutil.copytree(src / config.adapter, tmp / config.adapter)
        if card is not None:
            (tmp / "README.md").write_text(card)
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
        for f in tmp.rglob("*"):  # training writes private files; a shipped model is for everyone to read
            f.chmod(0o755 if f.is_dir() else 0o644)
    return out


def describe(name: str) -> dict[str, object]:
    """Name, folder, recipe and training summary of a shipped model (for `dec2vec models list`)."""
    folder = path(name)
    info: dict[str, object] = {"name": name, "folder": str(folder), **json.loads((folder / CONFIG_NAME).read_text())}
    if (folder / "training.json").is_file():
        info["training"] = json.loads((folder / "training.json").read_text())
    return info
