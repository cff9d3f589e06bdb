"""Which model made an index's vectors: vectors from another model are not comparable, so mixing is refused.

The identity is the embedder's recipe, options, backbone and encoder references, its dimension,
and a fingerprint of its weights. The fingerprint hashes 4,096 evenly spaced values of every
tensor (backbone, heads, encoder), rounded to bfloat16: it takes ~0.1 s instead of ~2 s for all
135M values, the same weights loaded in float32 or bfloat16 give the same fingerprint, and
training (a merged LoRA, new heads, a fine-tune) moves whole matrices, so it changes the sample.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from ..errors import InputError

SAMPLE = 4096
FIELDS = ("recipe", "recipe_options", "backbone", "encoder", "embedding_dim", "weights")


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over every tensor's name, shape and a strided bfloat16 sample of its values."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        flat = t.detach().reshape(-1)  # (n,)
        step = max(1, flat.numel() // SAMPLE)
        sample = flat[::step][:SAMPLE].to(device="cpu", dtype=torch.bfloat16).contiguous()  # (<= SAMPLE,)
        h.update(f"{name}:{tuple(t.shape)}:".encode())
        h.update(sample.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def model_identity(embedder: Any) -> dict[str, Any]:
    """The facts that decide whether two embedders make the same vectors."""
    cfg = embedder.config
    identity = {
        "recipe": cfg.recipe,
        "recipe_options": cfg.recipe_options,
        "backbone": cfg.backbone,
        "encoder": cfg.encoder,
        "embedding_dim": int(embedder.embedding_dim),
        "weights": weights_fingerprint(embedder),
    }
    return json.loads(json.dumps(identity, sort_keys=True))  # as stored: tuples become lists


def describe(identity: dict[str, Any]) -> str:
    return (
        f"recipe {identity.get('recipe')} on {identity.get('backbone')} "
        f"(dim {identity.get('embedding_dim')}, weights {str(identity.get('weights'))[:12]})"
    )


def check_same_model(stored: dict[str, Any], current: dict[str, Any], where: str) -> None:
    """An InputError naming what differs when ``current`` is not the model the index was built with."""
    diff = [k for k in FIELDS if stored.get(k) != current.get(k)]
    if diff:
        raise InputError(
            f"the index at {where} was built with {describe(stored)}, but this model is {describe(current)} "
            f"(different: {', '.join(diff)}); its vectors cannot be mixed with the index's. Use the index's "
            "model (the default when --model is left out), or build a new index with --db elsewhere"
        )
