"""Every objective on tiny models: finite decreasing loss, gradients where intended, save -> load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dec2vec import Embedder
from dec2vec.attention import set_attention_dropout
from dec2vec.errors import ConfigError
from dec2vec.train.config import TrainConfig
from dec2vec.train.data import Record
from dec2vec.train.distributed import DistContext
from dec2vec.train.objectives import build_objective
from dec2vec.train.trainer import Trainer
from tests.conftest import SENTENCES
from tests.unit.train_helpers import read_log, tiny_config, write_texts

# (recipe, objective, LoRA?, lr, stage extras): MNTP and UniMAE learn a random 400-token LM head from
# scratch on the tiny model, which LoRA r=4 does too slowly to see in 20 steps; they train fully here.
TABLE = [
    ("causal2vec", "contrastive", True, 2e-2, {}),
    ("last-token", "contrastive", True, 2e-2, {}),
    ("mean", "contrastive", True, 2e-2, {}),
    ("echo", "contrastive", True, 2e-2, {}),
    ("icl", "contrastive", True, 2e-2, {}),
    ("nv-embed", "contrastive", True, 2e-2, {}),
    ("llm2vec", "contrastive", True, 2e-2, {}),
    ("llm2vec", "mntp", False, 1e-2, {}),
    ("last-token", "simcse", True, 1e-2, {"dropout": 0.5}),
    ("unimae", "unimae", False, 1e-2, {}),
]


def _table_config(tmp_path, backbone, encoder, recipe, objective, lora, lr, extra, steps):
    cfg = tiny_config(
        tmp_path,
        backbone,
        recipe,
        objective,
        encoder=encoder if recipe == "causal2vec" else None,
        steps=steps,
        batch_size=16,
        lr=lr,
    )
    cfg["lora"]["enabled"] = lora
    cfg["stages"][0].update(extra)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "objective", "lora", "lr", "extra"), TABLE, ids=[f"{r}-{o}" for r, o, *_ in TABLE])
def test_loss_finite_and_decreasing(tmp_path, tiny_backbone, tiny_encoder, recipe, objective, lora, lr, extra):
    cfg = _table_config(tmp_path, tiny_backbone, tiny_encoder, recipe, objective, lora, lr, extra, steps=20)
    Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    rows = read_log(tmp_path / "run")
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 20 and all(np.isfinite(losses))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.8 * first, f"{recipe}/{objective}: loss {first:.3f} -> {last:.3f}"
    if objective == "unimae":  # both parts logged separately, and both learn
        assert float(rows[-1]["mar"]) < float(rows[0]["mar"]) and float(rows[-1]["mrc"]) < float(rows[0]["mrc"])


def _one_step(tmp_path, backbone, encoder, recipe, objective, **top):
    cfg = tiny_config(tmp_path, backbone, recipe, objective, encoder=encoder)
    cfg.update(top)
    cfg = TrainConfig.from_dict(cfg)
    trainer = Trainer(cfg, progress=False)
    obj = build_objective(trainer.emb, cfg.stages[0], DistContext(), 0)
    params = trainer.trainable(obj)
    if objective == "contrastive":
        recs = [Record(query=s, positive=s[::-1].strip() or "x", negatives=("a dog",)) for s in SENTENCES]
    else:
        recs = [Record(text=s) for s in SENTENCES]
    trainer.train(True)
    obj.step(recs, cfg.stages[0].data[0], 0)
    tree = dict(torch.nn.ModuleDict({"model": trainer.emb, "objective": obj.extra}).named_parameters())
    with_grad = {n for n, p in tree.items() if p.grad is not None and p.grad.abs().sum() > 0}
    return trainer, params, tree, with_grad


@pytest.mark.parametrize("encoder_mode", ["frozen", "full", "lora"])
def test_gradients_reach_exactly_the_trained_parameters_causal2vec(tmp_path, tiny_backbone, tiny_encoder, encoder_mode):
    trainer, params, tree, with_grad = _one_step(
        tmp_path, tiny_backbone, tiny_encoder, "causal2vec", "contrastive", encoder_mode=encoder_mode
    )
    assert with_grad <= set(params), f"frozen parameters got gradients: {sorted(with_grad - set(params))[:5]}"
    backbone = {n for n in params if n.startswith("model.backbone.")}
    assert backbone and all("lora_" in n for n in backbone)  # only adapters train in the backbone
    assert any("lora_B" in n for n in with_grad & backbone)  # B starts at 0, so A's first gradient is 0
    assert {n for n in tree if n.startswith("model.heads.projector")} <= with_grad
    encoder = {n for n in with_grad if n.startswith("model.encoder.")}
    if encoder_mode == "frozen":
        assert not {n for n in params if n.startswith("model.encoder.")}
    elif encoder_mode == "full":
        assert any("embeddings" in n for n in encoder) and not any("lora_" in n for n in encoder)
    else:
        assert encoder and all("lora_" in n for n in {n for n in params if n.startswith("model.encoder.")})


def test_full_fine_tuning_trains_every_backbone_weight(tmp_path, tiny_backbone):
    _, params, tree, with_grad = _one_step(
        tmp_path, tiny_backbone, None, "last-token", "contrastive", lora={"enabled": False}
    )
    backbone = {n for n in tree if n.startswith("model.backbone.")}
    assert backbone <= set(params)
    assert not any("lora_" in n for n in params)
    assert any("layers.0.self_attn.q_proj" in n for n in with_grad)


def test_unimae_decoder_trains_and_lm_head_stays_frozen(tmp_path, tiny_backbone):
    trainer, params, tree, with_grad = _one_step(tmp_path, tiny_backbone, None, "unimae", "unimae")
    assert any(n.startswith("objective.mrc_decoder.positions") for n in with_grad)  # trainable positions
    assert any(n.startswith("objective.mrc_decoder.attn") for n in with_grad)
    assert not any("embed_tokens" in n or "lm_head" in n for n in params)
    assert with_grad <= set(params)


def test_mntp_predicts_masked_tokens_bidirectionally(tmp_path, tiny_backbone):
    trainer, params, tree, with_grad = _one_step(tmp_path, tiny_backbone, None, "llm2vec", "mntp")
    assert trainer.emb.recipe.bidirectional
    assert with_grad and with_grad <= set(params)


def test_objective_not_in_recipe_is_refused(tmp_path, tiny_backbone):
    cfg = TrainConfig.from_dict(tiny_config(tmp_path, tiny_backbone, "causal2vec", "mntp"))
    with pytest.raises(ConfigError, match="does not train with 'mntp'"):
        Trainer(cfg, progress=False).run()


def test_attention_dropout_really_changes_the_views(tiny_backbone):
    emb = Embedder.from_recipe("llm2vec", tiny_backbone, device="cpu", dtype="float32")
    emb.train()
    feats = emb.tokenize(SENTENCES)
    torch.manual_seed(0)
    a, b = emb(feats), emb(feats)
    torch.testing.assert_close(a, b)  # shipped with dropout 0: identical views
    set_attention_dropout(emb.backbone, 0.5)
    assert not torch.allclose(emb(feats), emb(feats))


def _lora_causal2vec_run(tmp_path, backbone, encoder, merge: bool) -> Trainer:
    cfg = tiny_config(
        tmp_path,
        backbone,
        "causal2vec",
        "contrastive",
        encoder=encoder,
        steps=3,
        encoder_mode="lora",
        merge_on_save=merge,
    )
    return Trainer(TrainConfig.from_dict(cfg), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("merge", [True, False])
def test_save_load_gives_identical_embeddings(tmp_path, tiny_backbone, tiny_encoder, merge):
    trainer = _lora_causal2vec_run(tmp_path, tiny_backbone, tiny_encoder, merge)
    out = trainer.run()
    assert (out / "adapter").is_dir() != merge
    before = trainer.emb.encode(SENTENCES) if merge else None
    loaded = Embedder.from_pretrained(out, device="cpu", dtype="float32")  # as trained (else the inference default)
    after = loaded.encode(SENTENCES)
    if merge:
        np.testing.assert_array_equal(before, after)
    # adapter and merged exports of the same seeded run load to the same model
    other = tmp_path / "other"
    other.mkdir()
    twin_run = _lora_causal2vec_run(other, tiny_backbone, tiny_encoder, not merge)
    twin = Embedder.from_pretrained(twin_run.run(), device="cpu", dtype="float32").encode(SENTENCES)
    np.testing.assert_allclose(after, twin, atol=1e-5)
    # training moved the model away from the untrained one
    untrained = Embedder.from_recipe("causal2vec", tiny_backbone, encoder=tiny_encoder, device="cpu").encode(SENTENCES)
    assert not np.allclose(untrained, after, atol=1e-4)


def test_unimae_save_drops_the_decoder(tmp_path, tiny_backbone):
    cfg = TrainConfig.from_dict(tiny_config(tmp_path, tiny_backbone, "unimae", "unimae", steps=2))
    out = Trainer(cfg, progress=False).run()
    assert not (out / "heads.safetensors").exists()
    loaded = Embedder.from_pretrained(out, device="cpu")
    assert loaded.encode(SENTENCES).shape == (len(SENTENCES), 32)


@pytest.mark.slow
def test_multi_stage_pipeline_runs_in_order(tmp_path, tiny_backbone):
    texts = write_texts(tmp_path / "t.jsonl")
    cfg = tiny_config(tmp_path, tiny_backbone, "llm2vec", "contrastive", steps=2, tensorboard=True)
    cfg["stages"] = [
        {"objective": "mntp", "data": [{"path": str(texts)}], "steps": 2, "batch_size": 4},
        {"objective": "simcse", "data": [{"path": str(texts)}], "steps": 2, "batch_size": 4, "dropout": 0.3},
        {**cfg["stages"][0]},
    ]
    Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    rows = read_log(tmp_path / "run")
    assert [r["objective"] for r in rows] == ["mntp"] * 2 + ["simcse"] * 2 + ["contrastive"] * 2
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert rows[0]["mntp"] and not rows[0]["simcse"] and rows[2]["simcse"] and rows[4]["contrastive"]
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_next_token_pairs_pick_the_state_before_each_label():
    from dec2vec.train.losses import IGNORE, next_token_loss, next_token_pairs, token_loss

    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)  # (B, T, d)
    labels = torch.tensor([[IGNORE, 5, IGNORE, 7], [IGNORE, IGNORE, 1, IGNORE]])
    states, targets = next_token_pairs(hidden, labels)
    torch.testing.assert_close(states, torch.stack([hidden[0, 0], hidden[0, 2], hidden[1, 1]]))
    assert targets.tolist() == [5, 7, 1]
    head = torch.nn.Linear(3, 9)
    torch.testing.assert_close(token_loss(head(states), targets), next_token_loss(head(hidden), labels))
    empty = next_token_loss(head(hidden), torch.full_like(labels, IGNORE))
    assert float(empty.detach()) == 0.0


def test_info_nce_matches_a_hand_computation():
    from dec2vec.train.losses import info_nce

    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])  # positives sit at offset 1, 2
    scores = torch.nn.functional.normalize(q) @ torch.nn.functional.normalize(d).T / 0.5
    expected = (torch.logsumexp(scores[0], 0) - scores[0, 1] + torch.logsumexp(scores[1], 0) - scores[1, 2]) / 2
    torch.testing.assert_close(info_nce(q, d, temperature=0.5, offset=1), expected)


@pytest.mark.parametrize(("recipe", "objective", "lora", "lr", "extra"), TABLE, ids=[f"{r}-{o}" for r, o, *_ in TABLE])
def test_gradients_reach_exactly_the_trainable_parameters(
    tmp_path, tiny_backbone, tiny_encoder, recipe, objective, lora, lr, extra
):
    _, params, tree, with_grad = _one_step(
        tmp_path,
        tiny_backbone,
        tiny_encoder if recipe == "causal2vec" else None,
        recipe,
        objective,
        lora={"enabled": lora, "r": 4, "alpha": 8, "dropout": 0.0},
    )
    assert with_grad <= set(params), f"frozen parameters got gradients: {sorted(with_grad - set(params))[:5]}"
    # every trainable parameter gets a gradient, except LoRA A matrices on the first step (B starts at 0)
    silent = {n for n in set(params) - with_grad if "lora_A" not in n}
    assert not silent, f"trainable parameters without gradient: {sorted(silent)[:5]}"
    if lora:
        assert all("lora_" in n for n in params if n.startswith("model.backbone."))


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "objective", "lora", "lr", "extra"), TABLE, ids=[f"{r}-{o}" for r, o, *_ in TABLE])
def test_every_objective_saves_and_reloads_identically(
    tmp_path, tiny_backbone, tiny_encoder, recipe, objective, lora, lr, extra
):
    cfg = _table_config(tmp_path, tiny_backbone, tiny_encoder, recipe, objective, lora, lr, extra, steps=2)
    trainer = Trainer(TrainConfig.from_dict(cfg), progress=False)
    out = trainer.run()
    saved = Embedder.from_pretrained(out, dtype=trainer.emb.config.dtype)  # in the dtype it was trained in
    np.testing.assert_array_equal(trainer.emb.encode(SENTENCES), saved.encode(SENTENCES))
