"""The real registry models: SmolLM2-135M-Instruct backbone, all-MiniLM-L6-v2 light encoder."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from dec2vec import Embedder, recipe_names
from dec2vec.attention import run_decoder

pytestmark = pytest.mark.integration

TEXTS = [
    "The capital of France is Paris.",
    "A man is playing a guitar on stage.",
    "Stock markets fell sharply after the central bank raised interest rates by half a point.",
    "Cats sleep a lot.",
]


def cos_rows(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module", params=recipe_names())
def real(request):
    return Embedder.from_recipe(request.param, device="cpu", dtype="float32")


def test_recipe_on_real_models(real):
    out = real.encode(TEXTS)
    assert out.shape == (4, real.embedding_dim) and np.isfinite(out).all()
    assert real.embedding_dim == (1152 if real.config.recipe == "causal2vec" else 576)
    alone = np.stack([real.encode([t])[0] for t in TEXTS])
    left = real.encode(TEXTS, padding_side="left")
    assert cos_rows(out, alone).min() >= 0.9999
    assert cos_rows(out, left).min() >= 0.9999
    assert not np.allclose(out[0], out[1])  # different texts, different vectors


def test_fast_encode_path_equals_reference_on_real_models(real):
    """encode (sorted budget batches, prefetch, no-mask or packed attention) = forward, one text at a time."""
    with torch.inference_mode():
        ref = torch.cat([torch.nn.functional.normalize(real(real.tokenize([t])), dim=-1) for t in TEXTS]).numpy()
    for packed in (False, True):
        assert cos_rows(real.encode(TEXTS, packed=packed, max_tokens=64), ref).min() >= 0.9999


def test_bidirectional_on_real_smollm2():
    emb = Embedder.from_recipe("mean", device="cpu", dtype="float32")
    ids = emb.tokenizer("The quick brown fox jumps over the lazy dog", return_tensors="pt")["input_ids"]
    changed = ids.clone()
    j = ids.shape[1] - 2
    changed[0, j] = emb.tokenizer(" cat", add_special_tokens=False)["input_ids"][0]
    mask = torch.ones_like(ids)
    emb_layer = emb.backbone.get_input_embeddings()
    with torch.no_grad():
        for bidir in (True, False):
            a = run_decoder(emb.backbone, emb_layer(ids), mask, bidirectional=bidir)[0, :j]
            b = run_decoder(emb.backbone, emb_layer(changed), mask, bidirectional=bidir)[0, :j]
            diff = (a - b).abs().max().item()
            assert (diff > 1e-3) if bidir else (diff == 0.0), (bidir, diff)


def test_backbone_still_generates():
    emb = Embedder.from_recipe("causal2vec", device="cpu", dtype="float32")
    ids = emb.tokenizer("The capital of France is", return_tensors="pt")
    out = emb.backbone.generate(**ids, max_new_tokens=4, do_sample=False)
    assert "Paris" in emb.tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


def test_causal2vec_save_load_and_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    emb = Embedder.from_recipe("causal2vec", device="cpu", dtype="float32")
    ref = emb.encode(TEXTS)
    emb.save_pretrained(tmp_path / "c2v")
    # in the dtype it was saved in: identical; with no dtype, the inference default (bf16 on CPUs that run it)
    np.testing.assert_array_equal(Embedder.from_pretrained(tmp_path / "c2v", dtype="float32").encode(TEXTS), ref)
    at_defaults = Embedder.from_pretrained(tmp_path / "c2v").encode(TEXTS)
    st = SentenceTransformer(str(tmp_path / "c2v"), trust_remote_code=True, device="cpu")
    assert cos_rows(st.encode(TEXTS), at_defaults).min() >= 0.9999  # sentence-transformers: the same default


def test_cli_embed_on_real_registry_models(tmp_path):
    exe = shutil.which("dec2vec") or f"{sys.executable} -m dec2vec.cli"
    cmd = [*exe.split(), "embed", "--model", "causal2vec", "--json", "hello world", "embeddings from LLMs"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    vecs = np.array(json.loads(res.stdout))
    assert vecs.shape == (2, 1152)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    bad = subprocess.run([*exe.split(), "embed", "--model", "causal2vec", ""], capture_output=True, text=True)
    assert bad.returncode == 2 and "item 0: the text is empty" in bad.stderr and "Traceback" not in bad.stderr


def test_registry_encoder_embeds_as_it_ships(capsys):
    """`dec2vec embed --model all-minilm-l6-v2`: the vectors sentence-transformers gives for it (mean
    pooling, 256 tokens, normalised), not an error."""
    from sentence_transformers import SentenceTransformer

    from dec2vec import models
    from dec2vec.cli import main
    from dec2vec.encoder_only import EncoderOnlyEmbedder

    ours = EncoderOnlyEmbedder.from_registry("all-minilm-l6-v2", device="cpu", dtype="float32")
    st = SentenceTransformer(str(models.weights_folder("all-minilm-l6-v2")), device="cpu")
    assert ours.max_length == st.max_seq_length == 256 and ours.embedding_dim == 384
    want = st.encode(TEXTS)
    np.testing.assert_allclose(ours.encode(TEXTS), want, atol=1e-5)
    assert main(["embed", "--model", "all-minilm-l6-v2", "--device", "cpu", "--json", *TEXTS]) == 0
    np.testing.assert_allclose(np.asarray(json.loads(capsys.readouterr().out)), want, atol=1e-5)
