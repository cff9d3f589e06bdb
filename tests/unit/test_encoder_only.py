"""Encoder-only registry models (all-MiniLM-L6-v2 …) embedding on their own, on a tiny BERT standing in for them."""

import json

import numpy as np
import pytest
import torch

from dec2vec import Embedder, TruncationWarning, models
from dec2vec.cli import main
from dec2vec.encoder_only import EncoderOnlyEmbedder
from dec2vec.errors import ConfigError, InputError, ModelNotFoundError, TruncationError
from dec2vec.loading import _load_encoder
from dec2vec.references import resolve_model

from ..conftest import SENTENCES

NAME = "tiny-encoder"


@pytest.fixture
def registered(monkeypatch, tiny_encoder):
    """The tiny BERT as a registry encoder, as all-minilm-l6-v2 is (resolved to its folder)."""
    entry = models.RegistryModel(name=NAME, role="encoder", packages=(), module="none", subpath="")
    monkeypatch.setitem(models.REGISTRY, NAME, entry)
    resolve = models.weights_folder
    monkeypatch.setattr(models, "weights_folder", lambda ref: tiny_encoder if ref == NAME else resolve(ref))
    return NAME


@pytest.fixture
def enc(registered):
    return EncoderOnlyEmbedder.from_registry(registered, device="cpu")


def reference(tiny_encoder, texts):
    """Mean pooling of the BERT's last states over real tokens, then unit length: what it ships as."""
    light = _load_encoder(str(tiny_encoder), torch.float32, 512, "mean")
    feats = light.tokenize(texts)
    with torch.inference_mode():
        hidden = light.model(
            input_ids=feats["encoder_input_ids"], attention_mask=feats["encoder_attention_mask"]
        ).last_hidden_state  # (B, S, e)
    mask = feats["encoder_attention_mask"][..., None].float()  # (B, S, 1)
    mean = (hidden * mask).sum(1) / mask.sum(1)  # (B, e)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


def is_encoder_only_name(ref):
    try:
        return resolve_model(ref).kind == "encoder-only"
    except ModelNotFoundError:
        return False


def test_registry_encoders_are_recognised(registered, tmp_path, monkeypatch):
    assert is_encoder_only_name("all-minilm-l6-v2") and is_encoder_only_name(registered)
    assert not is_encoder_only_name("smollm2-135m-instruct") and not is_encoder_only_name("mean")
    monkeypatch.chdir(tmp_path)
    (tmp_path / registered).mkdir()  # a local folder of that name wins over the registry
    assert not is_encoder_only_name(registered)


def test_encode_is_native_mean_pooling_unit_length(enc, tiny_encoder):
    out = enc.encode(SENTENCES)
    assert out.shape == (len(SENTENCES), 24) and out.dtype == np.float32 and enc.embedding_dim == 24
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out, reference(tiny_encoder, SENTENCES), atol=1e-5)
    one_per_batch = enc.encode(SENTENCES, max_tokens=1)
    np.testing.assert_allclose(one_per_batch, out, atol=1e-5)
    raw = enc.encode(SENTENCES, normalize=False)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), out, atol=1e-5)
    blocks = list(enc.encode_iter(iter(SENTENCES), chunk_size=2))
    assert [len(b) for b in blocks] == [2, 2, 1]
    np.testing.assert_allclose(np.concatenate(blocks), out, atol=1e-5)


def test_errors_and_truncation(enc):
    with pytest.raises(InputError, match="item 1: the text is empty"):
        enc.encode(["a dog", " "])
    with pytest.raises(ConfigError, match="takes no instruction"):
        enc.encode(["a dog"], instruction="find animals")
    long = " ".join(["cat"] * 100)  # over the tiny BERT's 64 positions
    with pytest.warns(TruncationWarning, match="first: item 1"):
        assert enc.encode(["a dog", long]).shape == (2, 24)
    with pytest.raises(TruncationError, match="item 1: .* exceed the model's limit 64"):
        enc.encode(["a dog", long], truncate=False)


def test_cli_embed_and_info_take_a_registry_encoder(registered, tiny_encoder, tmp_path, capsys):
    assert main(["embed", "--model", registered, "--json", *SENTENCES[:2]]) == 0
    vecs = np.asarray(json.loads(capsys.readouterr().out), dtype=np.float32)
    np.testing.assert_allclose(vecs, reference(tiny_encoder, SENTENCES[:2]), atol=1e-5)
    src = tmp_path / "in.txt"
    src.write_text("\n".join(SENTENCES) + "\n\n")
    assert main(["embed", "--model", registered, "--input", str(src), "--output", str(tmp_path / "o.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), reference(tiny_encoder, SENTENCES), atol=1e-5)
    assert main(["info", registered, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["embedding_dim"] == 24 and info["pooling"] == "mean" and info["max_length"] == 64


def test_embedder_names_what_a_registry_model_is():
    with pytest.raises(ModelNotFoundError, match="encoder-only model.*dec2vec embed --model all-minilm-l6-v2"):
        Embedder.from_pretrained("all-minilm-l6-v2")
    with pytest.raises(ModelNotFoundError, match="backbone LLM.*from_recipe"):
        Embedder.from_pretrained("smollm2-135m-instruct")
