"""Shipped models: slim folders (trained parts only), the default model, validation scores."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dec2vec import Embedder, pretrained
from dec2vec.cli import build_parser
from dec2vec.errors import ConfigError, ModelNotFoundError
from dec2vec.train.config import TrainConfig
from dec2vec.train.trainer import Trainer
from dec2vec.train.validate import read_pairs, retrieval_scores, valid_sources, validate
from tests.conftest import SENTENCES
from tests.unit.train_helpers import tiny_config, write_pairs


def _trained(tmp_path, backbone, encoder, *, merge: bool = False, encoder_mode: str = "frozen"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config(
        tmp_path,
        backbone,
        "causal2vec",
        "contrastive",
        encoder=encoder,
        steps=2,
        merge_on_save=merge,
        encoder_mode=encoder_mode,
    )
    return Trainer(TrainConfig.from_dict(cfg), progress=False).run()


def test_slim_folder_holds_only_trained_parts_and_loads_identically(tmp_path, tiny_backbone, tiny_encoder):
    full = _trained(tmp_path, tiny_backbone, tiny_encoder)
    slim = pretrained.export_slim(full, tmp_path / "slim", card="# card\n", allow_local=True)
    assert not (slim / "backbone").exists() and not (slim / "encoder").exists()
    assert (slim / "adapter").is_dir() and (slim / "heads.safetensors").is_file()
    assert (slim / "README.md").read_text() == "# card\n"
    size = sum(f.stat().st_size for f in slim.rglob("*") if f.is_file())
    full_size = sum(f.stat().st_size for f in full.rglob("*") if f.is_file())
    assert size < full_size / 2
    a = Embedder.from_pretrained(full, device="cpu").encode(SENTENCES)
    b = Embedder.from_pretrained(slim, device="cpu").encode(SENTENCES)
    np.testing.assert_array_equal(a, b)
    # the trained parts matter: without them the base models give other embeddings
    bare = tmp_path / "bare"
    shutil.copytree(slim, bare)
    shutil.rmtree(bare / "adapter")
    cfg = json.loads((bare / "dec2vec.json").read_text())
    cfg["adapter"] = None
    (bare / "dec2vec.json").write_text(json.dumps(cfg))
    assert not np.allclose(a, Embedder.from_pretrained(bare, device="cpu").encode(SENTENCES), atol=1e-4)


def test_slim_folder_keeps_the_named_prompts(tmp_path, tiny_backbone, tiny_encoder):
    """A re-ship (scripts/ship_default.py, scripts/pooling_variant.py) must not drop ``prompt_name`` prompts."""
    full = _trained(tmp_path, tiny_backbone, tiny_encoder)
    st_cfg = full / "config_sentence_transformers.json"
    cfg = json.loads(st_cfg.read_text())
    cfg["prompts"] = {"query": "Given a question, retrieve the passage that answers it", "document": ""}
    st_cfg.write_text(json.dumps(cfg))
    slim = pretrained.export_slim(full, tmp_path / "slim", allow_local=True)
    kept = json.loads((slim / "config_sentence_transformers.json").read_text())["prompts"]
    assert kept == cfg["prompts"]
    assert Embedder.from_pretrained(slim, device="cpu").prompts["query"].startswith("Given a question")


def test_export_slim_refuses_what_would_not_load_elsewhere(tmp_path, tiny_backbone, tiny_encoder):
    full = _trained(tmp_path / "a", tiny_backbone, tiny_encoder)
    with pytest.raises(ConfigError, match="local folder"):
        pretrained.export_slim(full, tmp_path / "x")
    merged = _trained(tmp_path / "b", tiny_backbone, tiny_encoder, merge=True)
    with pytest.raises(ConfigError, match="merge_on_save"):
        pretrained.export_slim(merged, tmp_path / "y", allow_local=True)
    enc = _trained(tmp_path / "c", tiny_backbone, tiny_encoder, encoder_mode="lora")
    with pytest.raises(ConfigError, match="encoder was trained"):
        pretrained.export_slim(enc, tmp_path / "z", allow_local=True)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp folder left behind


def test_shipped_names_and_clear_errors():
    assert pretrained.DEFAULT_MODEL in pretrained.names()
    with pytest.raises(ModelNotFoundError, match="not a shipped dec2vec model"):
        pretrained.path("no-such-model")


def test_cli_embed_and_serve_default_to_the_default_model():
    parser = build_parser()
    assert parser.parse_args(["embed", "hello"]).model == pretrained.DEFAULT_MODEL
    assert parser.parse_args(["serve"]).model == pretrained.DEFAULT_MODEL
    assert parser.parse_args(["embed", "--model", "mean", "hello"]).model == "mean"


def test_retrieval_scores_rank_against_every_positive():
    q = np.eye(4, dtype=np.float32)
    assert retrieval_scores(q, q) == {"recall_at_1": 1.0, "mrr": 1.0, "rr": [1.0, 1.0, 1.0, 1.0]}
    d = q[[1, 0, 2, 3]]  # first two positives swapped: their queries rank their own positive 2nd
    s = retrieval_scores(q, d)
    assert s["recall_at_1"] == 0.5 and s["mrr"] == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)
    assert s["rr"] == [0.5, 0.5, 1.0, 1.0]  # per query, for paired comparisons


def test_validate_reads_the_valid_split_of_the_config(tmp_path, tiny_backbone):
    write_pairs(tmp_path / "toy.train.jsonl", n=8)
    write_pairs(tmp_path / "toy.valid.jsonl", n=12, seed=1)
    cfg = TrainConfig.from_dict(
        tiny_config(tmp_path, tiny_backbone, "mean", "contrastive", data=tmp_path / "toy.train.jsonl")
    )
    (src,) = valid_sources(cfg)
    assert src.path.name == "toy.valid.jsonl"
    queries, positives = read_pairs(src.path, 5)
    assert len(queries) == len(positives) == 5
    res = validate(Embedder.from_recipe("mean", tiny_backbone, device="cpu"), cfg, n=10)
    assert res["sources"]["toy"]["pairs"] == 10
    assert 0.0 <= res["mean"]["recall_at_1"] <= res["mean"]["mrr"] <= 1.0
    (tmp_path / "toy.valid.jsonl").unlink()
    with pytest.raises(Exception, match="validation split missing"):
        valid_sources(cfg)


def test_loading_a_lora_adapter_is_quiet(tmp_path, tiny_backbone):
    """peft reads transformers' deprecated `is_gradient_checkpointing` while it wraps the model: a
    FutureWarning on every load of the default model (a slim folder with an adapter), until filtered."""
    import warnings

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lora = get_peft_model(
            AutoModelForCausalLM.from_pretrained(tiny_backbone), LoraConfig(target_modules=["q_proj"])
        )
        lora.save_pretrained(tmp_path / "adapter")
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    emb.attach_adapter(tmp_path / "adapter")
    emb.save_pretrained(tmp_path / "m")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = Embedder.from_pretrained(tmp_path / "m", device="cpu")
    assert loaded.config.adapter is None  # merged
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)], [str(w.message) for w in caught]
