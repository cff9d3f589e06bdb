"""A tiny BERT registered as a registry encoder (as all-minilm-l6-v2 is), for tests of encoder-only models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dec2vec import models

NAME = "tiny-encoder"


@contextmanager
def registered_encoder(folder: Path, name: str = NAME) -> Iterator[str]:
    """``name`` resolves to ``folder`` as a registry encoder for the block."""
    entry = models.RegistryModel(name=name, role="encoder", packages=(), module="none", subpath="")
    resolve = models.weights_folder
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(models.REGISTRY, name, entry)
        mp.setattr(models, "weights_folder", lambda ref: folder if ref == name else resolve(ref))
        yield name
