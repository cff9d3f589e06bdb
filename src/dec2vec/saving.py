"""Writing a saved dec2vec folder: safetensors and JSON, atomically.

The folder is written in a temporary sibling and swapped into place only when complete
(:func:`dec2vec.foundations.files.atomic_folder`), so a crash or a full disk never leaves a
half-written model where a good one was. It also describes
itself to sentence-transformers (``modules.json``), which is why the names of
:mod:`dec2vec.integrations.sentence_transformers` appear here as strings, not as an import: that
module loads embedders, and this one must not depend on it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from .config import EmbedderConfig
from .encoder import LightEncoder
from .foundations.files import atomic_folder

HEADS_NAME = "heads.safetensors"
ST_MODULE_TYPE = "dec2vec.integrations.sentence_transformers.Dec2VecModule"
# The name every sentence-transformers version resolves (all-MiniLM-L6-v2's own modules.json uses it).
# Its path is the folder itself: Normalize has no weights, and finding no config there it takes its
# defaults; a subfolder would be an empty one, which neither wheels nor slim exports keep.
ST_NORMALIZE = {"idx": 1, "name": "1", "path": "", "type": "sentence_transformers.models.Normalize"}


ST_CONFIG_NAME = "config_sentence_transformers.json"


def write_st_files(folder: Path, prompts: dict[str, str] | None = None) -> None:
    """``modules.json`` (the dec2vec module, then Normalize: unit rows, as ``encode``) and its config.

    ``prompts`` (name -> instruction, e.g. ``query``) go where sentence-transformers reads them
    (``encode(prompt_name=...)``); the server's ``prompt_name`` and ``Embedder.prompts`` read them too.
    """
    modules = [{"idx": 0, "name": "0", "path": "", "type": ST_MODULE_TYPE}, ST_NORMALIZE]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    st_config = {"prompts": dict(prompts or {}), "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (folder / ST_CONFIG_NAME).write_text(json.dumps(st_config, indent=2) + "\n")


def save_folder(
    folder: str | os.PathLike[str],
    *,
    config: EmbedderConfig,
    backbone: nn.Module,
    tokenizer: Any,
    encoder: LightEncoder | None,
    heads: nn.ModuleDict,
    adapter_dir: Path | None = None,
    prompts: dict[str, str] | None = None,
) -> None:
    """Write a self-contained folder: ``dec2vec.json``, backbone, encoder, heads, adapter, ST files.

    ``adapter_dir`` (a peft adapter folder) is copied to ``config.adapter`` when that is set: the
    backbone is then the base model, and loading applies the adapter.
    """
    from safetensors.torch import save_file  # imported on use: a patched safetensors.torch.save_file applies

    dest = Path(folder).expanduser().resolve()
    # 0755: a saved model is for others to read too
    with atomic_folder(dest, mode=0o755) as tmp:
        config.save(tmp)
        if config.adapter:
            shutil.copytree(adapter_dir, tmp / config.adapter)
        backbone.save_pretrained(tmp / "backbone", safe_serialization=True)
        tokenizer.save_pretrained(tmp / "backbone")
        if encoder is not None:
            encoder.model.save_pretrained(tmp / "encoder", safe_serialization=True)
            encoder.tokenizer.save_pretrained(tmp / "encoder")
        if len(heads):
            state = {k: v.detach().contiguous().cpu() for k, v in heads.state_dict().items()}
            save_file(state, tmp / HEADS_NAME)
        write_st_files(tmp, prompts)
