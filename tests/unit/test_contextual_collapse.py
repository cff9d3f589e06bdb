"""Causal2Vec's Contextual token must carry the text: the part loss, the per-part validation, the trace."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from dec2vec import Embedder
from dec2vec.diagnostics import trace_contextual_token
from dec2vec.errors import ConfigError
from dec2vec.train.config import TrainConfig
from dec2vec.train.distributed import DistContext
from dec2vec.train.objectives import build_objective
from dec2vec.train.trainer import Trainer
from dec2vec.train.validate import curve_columns, part_spread, valid_sources, validate
from tests.unit.train_helpers import CONTENT, tiny_config, write_pairs


def _config(tmp_path, backbone, encoder, recipe="causal2vec", **stage):
    train = write_pairs(tmp_path / "toy.train.jsonl", n=32)
    write_pairs(tmp_path / "toy.valid.jsonl", n=16, seed=1)
    cfg = tiny_config(tmp_path, backbone, recipe, "contrastive", encoder=encoder, data=train, batch_size=16)
    cfg["stages"][0].update(stage)
    return TrainConfig.from_dict(cfg)


def test_part_spread_is_one_for_a_constant_part_and_zero_for_orthogonal_ones():
    assert part_spread(np.tile([[3.0, 4.0, 0.0]], (5, 1))) == pytest.approx(1.0)
    assert part_spread(np.eye(4)) == pytest.approx(0.0)


def test_part_loss_scores_each_part_alone_and_the_whole(tmp_path, tiny_backbone, tiny_encoder):
    cfg = _config(tmp_path, tiny_backbone, tiny_encoder, part_loss=0.5)
    trainer = Trainer(cfg, progress=False)
    obj = build_objective(trainer.emb, cfg.stages[0], DistContext(), 0)
    widths: list[int] = []

    def loss_fn(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        widths.append(q.shape[1])
        return (q.sum() + d.sum()) * 0 + q.shape[1]  # a loss equal to the width it was given

    loss, _ = obj.embed_grouped([(["the cat", "a dog"], None), (["a cat", "the dog"], None)], loss_fn)
    d = trainer.emb.hidden_size
    assert widths == [d, d, 2 * d]  # h_ctx alone, h_eos alone, then the concatenation
    assert float(loss) == pytest.approx(2 * d + 0.5 * d)


def test_part_loss_is_off_by_default_and_refused_when_negative(tmp_path, tiny_backbone, tiny_encoder):
    assert _config(tmp_path, tiny_backbone, tiny_encoder).stages[0].part_loss == 0.0
    with pytest.raises(ConfigError, match="part_loss"):
        _config(tmp_path, tiny_backbone, tiny_encoder, part_loss=-1.0)


def test_validation_scores_each_part_of_causal2vec_only(tmp_path, tiny_backbone, tiny_encoder):
    cfg = _config(tmp_path, tiny_backbone, tiny_encoder)
    emb = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu")
    res = validate(emb, cfg, n=16)
    assert set(res["parts"]) == {"ctx", "eos"}
    for part in res["parts"].values():
        assert 0.0 < part["mrr"] <= 1.0 and -1.0 <= part["spread"] <= 1.0
    cols = curve_columns(valid_sources(cfg), list(res["parts"]))
    assert cols[-4:] == ["part:ctx.mrr", "part:ctx.spread", "part:eos.mrr", "part:eos.spread"]
    last = Embedder.from_recipe("last-token", tiny_backbone, device="cpu")
    assert validate(last, cfg, n=16)["parts"] == {}


def test_a_constant_contextual_token_shows_as_a_collapsed_part(tmp_path, tiny_backbone, tiny_encoder):
    """The check can fail: a projector that writes the same token for every text gives h_ctx the same
    state for every text (causal attention: position 1 sees only BOS and itself)."""
    cfg = _config(tmp_path, tiny_backbone, tiny_encoder)
    emb = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu")
    with torch.no_grad():
        emb.heads["projector"].net[2].weight.zero_()
    assert validate(emb, cfg, n=16)["parts"]["ctx"]["spread"] > 0.999


def _bag_pairs(path, n: int, seed: int):
    """Pairs whose positive is the query's words shuffled: what a mean-pooling encoder, hence h_ctx, can match."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            words = rng.sample(CONTENT, 5)
            f.write(json.dumps({"query": " ".join(words), "positive": " ".join(rng.sample(words, 5))}) + "\n")


def test_after_training_with_the_part_loss_h_ctx_still_tells_texts_apart(tmp_path, tiny_backbone, tiny_encoder):
    _bag_pairs(tmp_path / "bag.train.jsonl", 64, 0)
    _bag_pairs(tmp_path / "bag.valid.jsonl", 16, 1)
    raw = tiny_config(tmp_path, tiny_backbone, "causal2vec", "contrastive", encoder=tiny_encoder, steps=8, lr=1e-2)
    raw["stages"][0].update(part_loss=1.0, batch_size=16, data=[{"path": str(tmp_path / "bag.train.jsonl")}])
    cfg = TrainConfig.from_dict(raw)
    trainer = Trainer(cfg, progress=False)
    trainer.run()
    ctx = validate(trainer.emb, cfg, n=16)["parts"]["ctx"]
    chance = float(np.mean([1.0 / k for k in range(1, 17)]))  # MRR of a random ranking of 16
    assert ctx["spread"] < 0.95, ctx
    assert ctx["mrr"] > 1.5 * chance, ctx


def test_trace_reports_every_layer_and_refuses_recipes_without_the_token(tiny_backbone, tiny_encoder):
    emb = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu")
    rows = trace_contextual_token(emb, [("the cat sat", "a cat sat"), ("a dog runs", "the dog ran")])
    assert [r.layer for r in rows] == list(range(emb.backbone.config.num_hidden_layers + 1))
    inner = [r for r in rows[:-1]]
    assert all(0.0 <= r.attn_ctx <= 1.0 for r in inner)
    with pytest.raises(ConfigError, match="Contextual token"):
        trace_contextual_token(Embedder.from_recipe("last-token", tiny_backbone, device="cpu"), [("a", "b")])


def test_normalize_parts_gives_each_half_unit_length_and_the_cosine_their_mean(tiny_backbone, tiny_encoder):
    texts = ["the cat sat", "a dog ran far away", "rain"]
    plain = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu")
    norm = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu", normalize_parts=True)
    norm.heads.load_state_dict(plain.heads.state_dict())  # same weights: only the pooling differs
    d = plain.hidden_size
    raw = plain.encode(texts, normalize=False)  # (3, 2d)
    got = norm.encode(texts, normalize=False)  # (3, 2d)
    assert np.linalg.norm(got[:, :d], axis=1) == pytest.approx(1.0, abs=1e-4)
    assert np.linalg.norm(got[:, d:], axis=1) == pytest.approx(1.0, abs=1e-4)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    ctx, eos = unit(raw[:, :d]), unit(raw[:, d:])
    assert np.allclose(got, np.concatenate([ctx, eos], axis=1), atol=1e-4)
    cos = unit(got) @ unit(got).T  # (3, 3): the mean of the two halves' cosines
    assert np.allclose(cos, (ctx @ ctx.T + eos @ eos.T) / 2, atol=1e-4)
