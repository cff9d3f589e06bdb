"""ONNX export: every recipe's graph gives ``Embedder.encode``'s vectors, and bad input fails first.

Tiny random models (tests/conftest.py), so each export takes about a second on one CPU thread.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from dec2vec import Embedder, TruncationWarning, recipe_names  # noqa: E402
from dec2vec.commands import export as commands_export  # noqa: E402
from dec2vec.export import OnnxEmbedder, export_onnx  # noqa: E402
from dec2vec.export.onnx import ONNX_NAME, SPEC_NAME  # noqa: E402
from tests.conftest import SENTENCES  # noqa: E402
from tests.unit.test_cli_bad_input import assert_one_line_error, run_cli  # noqa: E402

OPTIONS = {"icl": {"examples": [["a dog runs", "the dog ran"], ["blue sky", "the sky is blue"]]}}
# lengths from 2 to 20 words: every batch below holds padding
TEXTS = [*SENTENCES, "the cat", "a small bird in the tree ate the red rug and the dog ran over the road to the city ."]


def build(recipe: str, backbone, encoder, **kwargs) -> Embedder:
    return Embedder.from_recipe(
        recipe,
        backbone,
        encoder if recipe == "causal2vec" else None,
        dtype="float32",
        **OPTIONS.get(recipe, {}),
        **kwargs,
    )


def assert_same(got: np.ndarray, want: np.ndarray, floor: float = 0.999) -> None:
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    cosine = np.sum(got * want, axis=1)
    assert cosine.min() >= floor, cosine


@pytest.mark.parametrize("recipe", recipe_names())
def test_every_recipe_exports_with_encode_vectors(recipe, tiny_backbone, tiny_encoder, tmp_path, one_thread):
    emb = build(recipe, tiny_backbone, tiny_encoder)
    result = export_onnx(emb, tmp_path / "onnx", source=recipe)
    assert result.min_cosine >= 0.999
    onnx = OnnxEmbedder(tmp_path / "onnx", threads=1)
    assert onnx.embedding_dim == emb.embedding_dim
    assert_same(onnx.encode(TEXTS), emb.encode(TEXTS))
    # an instruction adds template tokens that mean pooling must skip: the masks come from the same pipeline
    assert_same(
        onnx.encode(TEXTS, instruction="Rewrite the sentence"), emb.encode(TEXTS, instruction="Rewrite the sentence")
    )
    # many small batches (longest first) come back in input order
    assert_same(onnx.encode(TEXTS, max_tokens=40), emb.encode(TEXTS))


def test_cli_exports_a_saved_causal2vec_folder(tiny_backbone, tiny_encoder, tmp_path, capsys, one_thread):
    """The full path: saved folder -> `dec2vec export` -> folder contents -> OnnxEmbedder; a rerun replaces it."""
    build("causal2vec", tiny_backbone, tiny_encoder).save_pretrained(tmp_path / "model")
    emb = Embedder.from_pretrained(tmp_path / "model", dtype="float32")
    for _ in range(2):  # the second run replaces the first export
        code, out, err = run_cli(
            capsys, ["export", str(tmp_path / "model"), "--format", "onnx", "--out", str(tmp_path / "x")]
        )
        assert code == 0, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("wrote ") and "encoder_input_ids" in last
    names = sorted(p.name for p in (tmp_path / "x").iterdir())
    assert names == sorted([ONNX_NAME, SPEC_NAME, "tokenizer", "encoder-tokenizer"])
    assert SPEC_NAME == commands_export.SPEC_NAME  # the command repeats it to stay import-light
    spec = json.loads((tmp_path / "x" / SPEC_NAME).read_text())
    assert spec["recipe"] == "causal2vec" and spec["output"]["normalized"] is True
    assert [i["name"] for i in spec["inputs"]][-2:] == ["encoder_input_ids", "encoder_attention_mask"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    assert_same(OnnxEmbedder(tmp_path / "x", threads=1).encode(TEXTS), emb.encode(TEXTS))


def test_truncation_matches_encode(tiny_backbone, tiny_encoder, tmp_path, one_thread):
    """Texts over max_length are cut where encode cuts them (echo: both copies), with the same warning."""
    emb = build("echo", tiny_backbone, tiny_encoder, max_length=40)
    export_onnx(emb, tmp_path / "onnx")
    onnx = OnnxEmbedder(tmp_path / "onnx", threads=1)
    assert onnx.max_length == 40
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncationWarning)
        got, want = onnx.encode(TEXTS), emb.encode(TEXTS)
    cut = [w.message.indices for w in caught if isinstance(w.message, TruncationWarning)]
    assert len(cut) == 2 and cut[0] == cut[1] and cut[0]
    assert_same(got, want)


def test_int8_quantization(tiny_backbone, tiny_encoder, tmp_path, one_thread):
    emb = build("mean", tiny_backbone, tiny_encoder)
    export_onnx(emb, tmp_path / "q", quantize="int8")
    onnx = OnnxEmbedder(tmp_path / "q", threads=1)
    assert onnx.spec["quantize"] == "int8"
    assert_same(onnx.encode(TEXTS), emb.encode(TEXTS), floor=0.9)  # int8 weights move vectors a little


def test_int8_export_keeps_the_outlier_layers_float(tiny_backbone, tmp_path, one_thread):
    """The layers Embedder.quantize keeps float are found in the graph and left out of int8."""
    import onnx as onnx_lib

    from dec2vec.quantize import layer_crests

    emb = build("mean", tiny_backbone, None)
    crests, _ = layer_crests(emb)
    cut = sorted(crests.values())[len(crests) // 2]
    kept = sorted(n for n, c in crests.items() if c > cut)
    export_onnx(emb, tmp_path / "q", quantize="int8", max_crest=cut)
    spec = json.loads((tmp_path / "q" / SPEC_NAME).read_text())
    assert spec["int8"]["kept_float"] == kept and spec["int8"]["excluded_nodes"] == len(kept)
    ops = [n.op_type for n in onnx_lib.load(str(tmp_path / "q" / ONNX_NAME)).graph.node]
    assert ops.count("MatMulInteger") == len(crests) - len(kept)  # the others: one int8 MatMul each


@pytest.fixture
def bad_input(tmp_path, monkeypatch, no_model_loads):
    """As tests/unit/test_cli_bad_input.py: any model load fails the test; cwd is an empty scratch folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    return tmp_path


@pytest.mark.parametrize(
    "argv,match",
    [
        (["export", "mean", "--format", "tflite", "--out", "x"], "argument --format: invalid choice: 'tflite'"),
        (["export", "mean", "--out", "x"], "the following arguments are required: --format"),
        (["export", "mean", "--format", "onnx", "--out", "x", "--quantize", "int4"], "invalid choice: 'int4'"),
        (["export", "mean", "--format", "onnx", "--out", "a_file/x"], "a_file is a file, not a folder"),
        (["export", "mean", "--format", "onnx", "--out", "a_file"], "a_file is a file, not a folder"),
        (["export", "mean", "--format", "onnx", "--out", "other"], "is a folder of other files, not an ONNX export"),
        (["export", "nope", "--format", "onnx", "--out", "x"], "neither a saved dec2vec model folder nor a recipe"),
        (
            ["export", "./missing", "--format", "onnx", "--out", "x"],
            "neither a saved dec2vec model folder nor a recipe",
        ),
    ],
    ids=["format", "no-format", "quantize", "out-under-file", "out-is-file", "out-foreign-folder", "model", "folder"],
)
def test_bad_input_is_one_line_before_any_model(bad_input, capsys, argv, match):
    before = sorted(p.name for p in bad_input.rglob("*"))
    assert_one_line_error(*run_cli(capsys, argv), match)
    assert sorted(p.name for p in bad_input.rglob("*")) == before  # nothing written, no probe left
