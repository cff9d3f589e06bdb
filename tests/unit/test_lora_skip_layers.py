"""``lora.skip_layers``: LoRA kept off chosen decoder layers (the sink-building ones, docs/RESULTS.md)."""

from __future__ import annotations

import pytest
from torch import nn
from transformers import AutoModelForCausalLM

from dec2vec.errors import ConfigError
from dec2vec.train.config import LoraSpec
from dec2vec.train.lora import add_lora, block_linear_names
from tests.conftest import tiny_config


def _model(layers: int = 4):
    cfg = tiny_config("llama")
    cfg.num_hidden_layers = layers
    return AutoModelForCausalLM.from_config(cfg)


def _layers_with_lora(model) -> set[int]:
    """Decoder layer indices that hold LoRA weights after add_lora."""
    out = set()
    for name, _ in model.named_parameters():
        if "lora_A" in name:
            idx = name.split(".layers.")[1].split(".")[0]
            out.add(int(idx))
    return out


def test_skipped_layers_get_no_adapter_and_the_rest_do():
    model = _model(4)
    add_lora(model, r=2, alpha=4, dropout=0.0, skip_blocks=[1, -1])  # -1: the last layer
    assert _layers_with_lora(model) == {0, 2}


def test_no_skip_is_every_layer():
    model = _model(4)
    add_lora(model, r=2, alpha=4, dropout=0.0)
    assert _layers_with_lora(model) == {0, 1, 2, 3}


def test_skip_covers_every_linear_of_the_layer():
    model = _model(3)
    every = block_linear_names(model)
    kept = block_linear_names(model, [1])
    gone = set(every) - set(kept)
    assert gone and all(".layers.1." in n for n in gone)
    assert len(gone) == len([n for n in every if ".layers.1." in n])


def test_out_of_range_layer_is_refused_with_the_count():
    with pytest.raises(ConfigError, match=r"\[7\] out of range for the 4 blocks"):
        block_linear_names(_model(4), [7])


def test_skip_layers_with_explicit_targets_is_refused():
    with pytest.raises(ConfigError, match="skip_layers"):
        LoraSpec(target_modules=["q_proj"], skip_layers=[1])


def test_a_nested_list_follows_its_outer_block():
    """Experts-style ModuleLists inside a layer: skipping layer 1 skips its experts too, and an index
    beyond the inner list's length is not an error there."""

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 4)
            self.experts = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([Layer() for _ in range(4)])

    kept = block_linear_names(Net(), [1, 3])
    assert kept == sorted(f"layers.{i}.{n}" for i in (0, 2) for n in ("proj", "experts.0", "experts.1"))
    assert len(block_linear_names(Net())) == 12
