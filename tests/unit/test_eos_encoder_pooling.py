"""Causal2Vec's ``eos+encoder`` pooling: h_eos beside the light encoder's own vector, mixed by cosine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dec2vec import Embedder
from dec2vec.errors import ConfigError
from dec2vec.train.config import TrainConfig
from dec2vec.train.validate import validate
from tests.unit.train_helpers import tiny_config, write_pairs

TEXTS = ["the cat sat on the mat", "a dog ran far away", "rain", "prices rose again in the spring"]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _pair(tiny_backbone, tiny_encoder, w: float = 0.5) -> tuple[Embedder, Embedder]:
    eos = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu", pooling="eos")
    mix = Embedder.from_recipe(
        "causal2vec", tiny_backbone, tiny_encoder, device="cpu", pooling="eos+encoder", encoder_weight=w
    )
    mix.heads.load_state_dict(eos.heads.state_dict())  # the same weights: only the pooling differs
    return eos, mix


def _encoder_vectors(emb: Embedder, texts: list[str]) -> np.ndarray:
    with torch.no_grad():
        return emb.encoder.encode_features(emb.encoder.tokenize(texts)).float().numpy()  # (n, e)


@pytest.mark.parametrize("w", [0.5, 0.2])
def test_the_halves_are_h_eos_and_the_encoder_vector_and_the_cosine_mixes_theirs(tiny_backbone, tiny_encoder, w):
    eos, mix = _pair(tiny_backbone, tiny_encoder, w)
    d, e = eos.hidden_size, mix.encoder.dim
    assert mix.embedding_dim == d + e
    assert mix.embedding_parts == {"eos": slice(0, d), "encoder": slice(d, d + e)}
    got = mix.encode(TEXTS, normalize=False)  # (4, d+e)
    assert got.shape == (len(TEXTS), d + e)
    h = unit(eos.encode(TEXTS, normalize=False))  # (4, d)
    v = unit(_encoder_vectors(mix, TEXTS))  # (4, e)
    assert np.allclose(got[:, :d], h * (1 - w) ** 0.5, atol=1e-4)
    assert np.allclose(got[:, d:], v * w**0.5, atol=1e-4)
    cos = unit(got) @ unit(got).T
    assert np.allclose(cos, (1 - w) * (h @ h.T) + w * (v @ v.T), atol=1e-4)


def test_it_survives_save_and_load(tmp_path, tiny_backbone, tiny_encoder):
    _, mix = _pair(tiny_backbone, tiny_encoder, 0.3)
    mix.save_pretrained(tmp_path / "m")
    back = Embedder.from_pretrained(tmp_path / "m", device="cpu", dtype="float32")
    assert back.recipe.options.pooling == "eos+encoder" and back.recipe.options.encoder_weight == 0.3
    assert np.allclose(back.encode(TEXTS), mix.encode(TEXTS), atol=1e-6)


def test_a_bad_weight_or_no_encoder_width_is_refused(tiny_backbone, tiny_encoder):
    for w in (0.0, 1.0, -0.5):
        with pytest.raises(ConfigError, match="encoder_weight"):
            Embedder.from_recipe(
                "causal2vec", tiny_backbone, tiny_encoder, device="cpu", pooling="eos+encoder", encoder_weight=w
            )
    _, mix = _pair(tiny_backbone, tiny_encoder)
    with pytest.raises(ConfigError, match="light encoder's width"):
        mix.recipe.embedding_dim(mix.hidden_size)


def test_validation_scores_each_half_alone(tmp_path, tiny_backbone, tiny_encoder):
    train = write_pairs(tmp_path / "toy.train.jsonl", n=16)
    write_pairs(tmp_path / "toy.valid.jsonl", n=12, seed=1)
    cfg = TrainConfig.from_dict(
        tiny_config(tmp_path, tiny_backbone, "causal2vec", "contrastive", encoder=tiny_encoder, data=train)
    )
    _, mix = _pair(tiny_backbone, tiny_encoder)
    res = validate(mix, cfg, n=12)
    assert set(res["parts"]) == {"eos", "encoder"}
    assert all(0.0 < p["mrr"] <= 1.0 for p in res["parts"].values())


def test_the_onnx_graph_carries_the_encoder_half(tmp_path, tiny_backbone, tiny_encoder):
    pytest.importorskip("onnxruntime")
    from dec2vec.export.onnx import export_onnx

    _, mix = _pair(tiny_backbone, tiny_encoder, 0.4)
    result = export_onnx(mix, tmp_path / "onnx")
    assert result.embedding_dim == mix.embedding_dim
    assert result.min_cosine > 0.999
