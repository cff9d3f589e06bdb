"""Int8 CPU mode: the measured layer choice, the refusals, and identities that never mix with float ones.

Tiny random models (tests/conftest.py): a quantization pass takes well under a second.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from dec2vec import Embedder
from dec2vec.errors import ConfigError
from dec2vec.foundations.fingerprint import module_digest
from dec2vec.quantize import CALIBRATION_TEXTS, layer_crests
from tests.conftest import SENTENCES
from tests.unit.test_cli_bad_input import assert_one_line_error, run_cli


def build(backbone, encoder=None, recipe: str = "mean", **kwargs) -> Embedder:
    return Embedder.from_recipe(recipe, backbone, encoder, device="cpu", dtype="float32", **kwargs)


def kinds(emb: Embedder) -> tuple[set[str], set[str]]:
    """Names of the int8 layers and of the float linear layers."""
    q = {n for n, m in emb.named_modules() if isinstance(m, DynamicLinear)}
    f = {n for n, m in emb.named_modules() if type(m) is nn.Linear}
    return q, f


def test_the_layer_choice_follows_the_measured_crest_factor(one_thread, tiny_backbone):
    emb = build(tiny_backbone)
    crests, unused = layer_crests(emb)
    assert unused == ["backbone.lm_head"]  # encode never runs the LM head: it stays float, generation unchanged
    assert crests and all(c >= 1 for c in crests.values())  # a peak is never below the RMS
    cut = sorted(crests.values())[len(crests) // 2]  # about half the layers under the bar
    report = emb.quantize("int8", max_crest=cut)
    q, f = kinds(emb)
    assert q == set(report.quantized) == {n for n, c in crests.items() if c <= cut}
    assert set(report.kept_float) == {n for n, c in crests.items() if c > cut} and report.kept_float
    assert f == set(report.kept_float) | {"backbone.lm_head"}


def test_int8_vectors_stay_close_to_float_and_the_choice_is_repeatable(one_thread, tiny_backbone, tiny_encoder):
    ref = build(tiny_backbone, tiny_encoder, "causal2vec")
    want = ref.encode(SENTENCES)
    a = build(tiny_backbone, tiny_encoder, "causal2vec", quantize="int8")
    b = build(tiny_backbone, tiny_encoder, "causal2vec")
    b.quantize("int8")
    got = a.encode(SENTENCES)
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert float((got * want).sum(1).min()) > 0.98
    assert not np.array_equal(got, want)  # int8 really ran
    assert a.quantization.quantized == b.quantization.quantized  # same calibration, same layers
    np.testing.assert_array_equal(got, b.encode(SENTENCES))
    # nothing quantized with a zero bar; everything the encode path runs with no bar
    none = build(tiny_backbone, tiny_encoder, "causal2vec")
    assert none.quantize("int8", max_crest=0.0).quantized == []
    every = build(tiny_backbone, tiny_encoder, "causal2vec")
    rep = every.quantize("int8", max_crest=math.inf)
    assert rep.kept_float == {} and any(n.startswith("encoder.") for n in rep.quantized)


def test_digests_of_quantized_models_are_their_own(one_thread, tiny_backbone):
    float_model = build(tiny_backbone)
    d_float = module_digest(float_model)
    q1 = build(tiny_backbone, quantize="int8")
    q2 = build(tiny_backbone, quantize="int8")
    assert module_digest(q1) == module_digest(q2)  # deterministic: the eval cache can key on it
    assert module_digest(q1) != d_float
    half = build(tiny_backbone)
    crests, _ = layer_crests(half)
    half.quantize("int8", max_crest=sorted(crests.values())[len(crests) // 2])
    assert module_digest(half) not in (module_digest(q1), d_float)  # another layer choice, another digest
    assert module_digest(build(tiny_backbone)) == d_float  # float digests unchanged by the new rule


def test_refusals_name_what_is_wrong(one_thread, tiny_backbone, tmp_path):
    with pytest.raises(ConfigError, match="float32"):
        Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="bfloat16", quantize="int8")
    with pytest.raises(ConfigError, match="unknown quantization 'int4'"):
        build(tiny_backbone, quantize="int4")
    with pytest.raises(ConfigError, match="CPU only"):
        Embedder.from_recipe("mean", tiny_backbone, device="meta", quantize="int8")
    emb = build(tiny_backbone, quantize="int8")
    with pytest.raises(ConfigError, match="already quantized"):
        emb.quantize("int8")
    with pytest.raises(ConfigError, match="not saved"):
        emb.save_pretrained(tmp_path / "q")
    assert not (tmp_path / "q").exists()


def test_calibration_texts_are_varied_and_fixed():
    assert len(CALIBRATION_TEXTS) >= 10 and len(set(CALIBRATION_TEXTS)) == len(CALIBRATION_TEXTS)
    lengths = sorted(len(t.split()) for t in CALIBRATION_TEXTS)
    assert lengths[0] < 10 < lengths[-1]  # short queries and paragraphs: both kinds of activation ranges


def test_cli_embed_int8(capsys, one_thread, tiny_backbone, tmp_path):
    folder = tmp_path / "m"
    build(tiny_backbone).save_pretrained(folder)
    code, out, err = run_cli(capsys, ["embed", "--model", str(folder), "--quantize", "int8", "--json", "a b", "c d"])
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 2 and len(rows[0]) == 32
    code, out, err = run_cli(capsys, ["embed", "--model", str(folder), "--quantize", "int8", "--dtype", "bf16", "a b"])
    assert_one_line_error(code, out, err, "float32")
