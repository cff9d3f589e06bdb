"""module_digest: one rule for the eval result cache and search indexes, equal to the eval rule it replaced."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import torch

from dec2vec import Embedder
from dec2vec.foundations.fingerprint import module_digest


def old_eval_digest(module: torch.nn.Module, extra: Any = None) -> str:
    """A verbatim copy of ``evaluation.encoders.tensors_digest`` as it was before ``module_digest``
    (commit 80ecb33): the eval result cache holds results keyed on its values."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(memoryview(t.view(torch.uint8).numpy()))
    return h.hexdigest()


def fixed_module() -> torch.nn.Module:
    """Values set from arange, not from an RNG: the digest is the same with every torch version."""
    m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    with torch.no_grad():
        for i, p in enumerate(m.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) / (i + 3))
    m.register_buffer("steps", torch.arange(4, dtype=torch.int64))
    m.half_ = torch.nn.Parameter(torch.linspace(-1, 1, 5, dtype=torch.bfloat16))
    return m


def test_pinned_values_of_the_eval_rule():
    """Computed with the old ``tensors_digest`` before it was removed; a change here would make
    every cached eval result miss (and recompute, ~10 minutes a result)."""
    m = fixed_module()
    assert module_digest(m, {"kind": "fixed"}) == "d56d86a08944302db279c8c744d0a9554d5a3eb3c50d858f079fc0d92b99309a"
    assert module_digest(m) == "8222e46dbb5d4ff4adacb546db2d2ac3d31ad30118cfa18c2fe94739e07fa92a"
    assert module_digest(m, {"kind": "fixed"}) == old_eval_digest(m, {"kind": "fixed"})


@pytest.fixture(scope="module")
def emb(tiny_backbone, tiny_encoder):
    return Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu")


def test_equals_the_old_eval_digest_on_a_tiny_model(emb):
    from dec2vec.evaluation.encoders import Dec2VecTextModel

    model = Dec2VecTextModel("tiny", emb, text_tokens=16, source="causal2vec")
    extra = {"config": emb.config.to_dict(), "text_tokens": 16}
    assert model.identity() == old_eval_digest(emb, extra)  # the eval result cache's key, unchanged
    assert module_digest(emb.backbone, {"kind": "backbone"}) == old_eval_digest(emb.backbone, {"kind": "backbone"})


def test_same_weights_same_digest_one_changed_weight_another(emb, tiny_backbone, tiny_encoder):
    again = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu")
    assert module_digest(again) == module_digest(emb)
    with torch.no_grad():
        again.backbone.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3  # one value
    assert module_digest(again) != module_digest(emb)
    assert module_digest(emb, {"a": 1}) != module_digest(emb, {"a": 2})  # extra is part of the key


def test_dtype_normalises_the_load_precision(tiny_backbone):
    fp32 = Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    bf16 = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="bfloat16")
    assert module_digest(fp32) != module_digest(bf16)  # eval: another dtype computes other scores
    assert module_digest(fp32, dtype=torch.bfloat16) == module_digest(bf16, dtype=torch.bfloat16)
    assert module_digest(bf16, dtype=torch.bfloat16) == module_digest(bf16)  # a no-op cast changes nothing


def test_zero_dim_tensors_are_hashed():
    m = torch.nn.Module()
    m.register_buffer("step", torch.tensor(3))
    other = torch.nn.Module()
    other.register_buffer("step", torch.tensor(4))
    assert module_digest(m) != module_digest(other)
