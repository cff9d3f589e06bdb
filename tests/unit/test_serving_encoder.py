"""``dec2vec serve`` with an encoder-only registry model (a tiny BERT standing in for all-MiniLM-L6-v2)."""

import httpx
import numpy as np
import pytest
import torch

from dec2vec.cli import main
from dec2vec.encoder_only import EncoderOnlyEmbedder
from dec2vec.serving.app import create_app
from dec2vec.serving.server import BackgroundServer
from dec2vec.serving.settings import ServerSettings
from dec2vec.text_embedders import load_text_embedder
from tests.conftest import SENTENCES

from .encoder_registry import registered_encoder

LONG = " ".join(["the quick brown fox jumps over the lazy dog"] * 3)  # ~27 tokens, over the server's 16


@pytest.fixture(scope="module")
def served(tiny_encoder):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with registered_encoder(tiny_encoder) as name:
        app = create_app(
            load_text_embedder(name, device="cpu"), ServerSettings(max_tokens_per_input=16, truncate=False)
        )
        with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield http, name, EncoderOnlyEmbedder.from_registry(name, device="cpu")
    torch.set_num_threads(n)


def test_embeddings_are_the_encoders_own(served):
    http, name, ref = served
    r = http.post("/v1/embeddings", json={"input": SENTENCES[:2]})
    body = r.json()
    assert r.status_code == 200 and body["model"] == name  # served under its own name by default
    got = np.array([d["embedding"] for d in body["data"]])
    np.testing.assert_allclose(got, ref.encode(SENTENCES[:2]), atol=1e-5)
    tokens = sum(len(ids) for ids in ref.encoder.token_ids(SENTENCES[:2]))
    assert body["usage"]["prompt_tokens"] == tokens
    r = http.post("/embed", json={"inputs": SENTENCES[:2], "normalize": False})
    np.testing.assert_allclose(r.json(), ref.encode(SENTENCES[:2], normalize=False), rtol=1e-5, atol=1e-5)


def test_limits_and_instructions(served):
    http, name, ref = served
    r = http.post("/v1/embeddings", json={"input": ["the cat"], "instruction": "find animals"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "instruction"
    assert "encoder-only model and takes no instruction" in r.json()["error"]["message"]
    r = http.post("/embed", json={"inputs": ["a dog", LONG]})
    assert r.status_code == 413 and "inputs[1]" in r.json()["error"]["message"]
    r = http.post("/embed", json={"inputs": ["a dog", LONG], "truncate": True})
    assert r.status_code == 200 and r.headers["X-Truncated-Inputs"] == "1"
    info = http.get("/info").json()
    assert info["recipe"] == "encoder-only" and info["backbone"] == name and info["encoder"] is None
    assert info["embedding_dim"] == 24 and info["max_length"] == 16


def test_cli_loads_an_encoder(tiny_encoder, capsys):
    with registered_encoder(tiny_encoder) as name:
        code = main(["serve", "--model", name, "--max-tokens-per-input", "100000", "--port", "0"])
    assert code == 2 and "over the model's max_length 64" in capsys.readouterr().err
