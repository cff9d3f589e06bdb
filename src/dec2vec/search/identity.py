"""Which model made an index's vectors: vectors from another model are not comparable, so mixing is refused.

The identity is the embedder's recipe, options, backbone and encoder references, its dimension,
and a digest of its weights: :func:`dec2vec.foundations.fingerprint.module_digest` (every value,
the rule ``dec2vec eval`` keys its results on) with the weights cast to bfloat16, so the same
weights loaded in float32 or bfloat16 make the same index. ``weights_rule`` names that rule.

Indexes built before it (no ``weights_rule``) hold a sampled fingerprint (4,096 evenly spaced
values of every tensor, rounded to bfloat16); for them the same sample is taken of the current
model, so an old index keeps working with its own model, and the next build stores the new digest.
A rule this version does not know (an index from a newer dec2vec) is refused, naming the rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import torch

from ..errors import InputError
from ..foundations.fingerprint import module_digest

FIELDS = ("recipe", "recipe_options", "backbone", "encoder", "embedding_dim", "weights")
WEIGHTS_RULE = "module_digest/bfloat16"
LEGACY_RULE = "sampled-4096/bfloat16"  # indexes without a ``weights_rule`` were built with it
_SAMPLE = 4096


def weights_fingerprint(model: torch.nn.Module) -> str:
    """The index's weight digest: every tensor, cast to bfloat16 (see the module docstring)."""
    return module_digest(model, dtype=torch.bfloat16)


def _sampled_fingerprint(model: torch.nn.Module) -> str:
    """The rule of indexes built before ``weights_rule`` existed; only to recognise their model."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        flat = t.detach().reshape(-1)  # (n,)
        step = max(1, flat.numel() // _SAMPLE)
        sample = flat[::step][:_SAMPLE].to(device="cpu", dtype=torch.bfloat16).contiguous()  # (<= _SAMPLE,)
        h.update(f"{name}:{tuple(t.shape)}:".encode())
        h.update(sample.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


_OLDER_RULES: dict[str, Callable[[torch.nn.Module], str]] = {LEGACY_RULE: _sampled_fingerprint}


class ModelIdentity(dict):  # type: ignore[type-arg]
    """The identity as stored in an index (a plain JSON object), which can also give the model's
    weight digest under an older index's rule."""

    def __init__(self, values: dict[str, Any], model: torch.nn.Module | None = None) -> None:
        super().__init__(values)
        self._model = model

    def weights_under(self, rule: str) -> str | None:
        """This model's weight digest under ``rule``; None for a rule this version does not know."""
        if rule == self.get("weights_rule"):
            return self.get("weights")
        if rule in _OLDER_RULES and self._model is not None:
            return _OLDER_RULES[rule](self._model)
        return None


def model_identity(embedder: Any) -> ModelIdentity:
    """The facts that decide whether two embedders make the same vectors."""
    cfg = embedder.config
    identity = {
        "recipe": cfg.recipe,
        "recipe_options": cfg.recipe_options,
        "backbone": cfg.backbone,
        "encoder": cfg.encoder,
        "embedding_dim": int(embedder.embedding_dim),
        "weights": weights_fingerprint(embedder),
        "weights_rule": WEIGHTS_RULE,
    }
    return ModelIdentity(json.loads(json.dumps(identity, sort_keys=True)), embedder)  # as stored: tuples -> lists


def describe(identity: dict[str, Any]) -> str:
    return (
        f"recipe {identity.get('recipe')} on {identity.get('backbone')} "
        f"(dim {identity.get('embedding_dim')}, weights {str(identity.get('weights'))[:12]})"
    )


def check_same_model(stored: dict[str, Any], current: dict[str, Any], where: str) -> None:
    """An InputError naming what differs when ``current`` is not the model the index was built with."""
    rule = stored.get("weights_rule", LEGACY_RULE)
    if isinstance(current, ModelIdentity):
        weights = current.weights_under(rule)
    else:  # a plain identity (as read from another index): comparable only under the same rule
        weights = current.get("weights") if rule == current.get("weights_rule") else None
    if weights is None:
        raise InputError(
            f"the index at {where} was built by a dec2vec whose weight digest ({rule}) this version cannot "
            f"compute, so it cannot tell whether this model made its vectors; use that dec2vec, or build a new "
            "index with --db elsewhere"
        )
    diff = [k for k in FIELDS if stored.get(k) != (weights if k == "weights" else current.get(k))]
    if diff:
        shown = {**current, "weights": weights}
        raise InputError(
            f"the index at {where} was built with {describe(stored)}, but this model is {describe(shown)} "
            f"(different: {', '.join(diff)}); its vectors cannot be mixed with the index's. Use the index's "
            "model (the default when --model is left out), or build a new index with --db elsewhere"
        )
