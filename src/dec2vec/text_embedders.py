"""Loading any model a ``--model`` string names: the one loader that commands and services call.

``dec2vec embed``/``info``, ``serve``, ``index``/``search``/``ask`` and ``Index.open`` all load
through :func:`load_text_embedder`: :func:`~dec2vec.references.resolve_model` says what the string
is, and an encoder-only registry model becomes an :class:`~dec2vec.encoder_only.EncoderOnlyEmbedder`,
anything else what :meth:`Embedder.from_pretrained` loads. Both satisfy the same surface
(:data:`TextEmbedder`), so callers need no branch on the kind of model.
"""

from __future__ import annotations

import os

from .embedder import Embedder
from .encoder_only import ENCODER_ONLY, EncoderOnlyEmbedder
from .errors import InputError
from .references import resolve_model

TextEmbedder = Embedder | EncoderOnlyEmbedder


def load_text_embedder(
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
    found = resolve_model(model)
    if found.kind == ENCODER_ONLY:
        if quantize:
            raise InputError(f"--quantize applies to dec2vec models, not to the registry encoder '{model}'")
        return EncoderOnlyEmbedder.from_registry(found.ref, device=device, dtype=dtype)
    # a hub repo is downloaded once, by the resolver: load its folder
    where = found.where if found.kind == "hub" else model
    return Embedder.from_pretrained(where, device=device, dtype=dtype, quantize=quantize)
