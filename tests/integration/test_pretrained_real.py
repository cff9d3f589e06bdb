"""The packaged default model: trained Causal2Vec parts on the registry SmolLM2 and MiniLM, offline."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dec2vec import Embedder, pretrained

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def default():
    return Embedder.from_pretrained(pretrained.DEFAULT_MODEL, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def reference():
    return json.loads((pretrained.path(pretrained.DEFAULT_MODEL) / "reference.json").read_text())


def test_packaged_model_is_slim_and_documented():
    folder = pretrained.path(pretrained.DEFAULT_MODEL)
    assert not (folder / "backbone").exists() and not (folder / "encoder").exists()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size < 40e6  # the adapter and projector only; the base weights come from registry packages
    card = (folder / "README.md").read_text()
    for section in ("## Training data", "## Scores", "## Limits"):
        assert section in card


def test_packaged_model_reproduces_the_trained_run(default, reference):
    """Same embeddings as the full run folder gave when it was packaged (scripts/ship_default.py)."""
    assert default.config.recipe == "causal2vec" and default.embedding_dim == 1152
    got = default.encode(reference["texts"])
    want = np.asarray(reference["embeddings"], dtype=np.float32)
    np.testing.assert_allclose(got, want, atol=2e-4)
    q = reference["query"]
    got_q = default.encode([q["text"]], instruction=q["instruction"])[0]
    np.testing.assert_allclose(got_q, np.asarray(reference["query_embedding"]), atol=2e-4)


def test_cli_embed_uses_the_default_model(default):
    out = subprocess.run(
        [sys.executable, "-m", "dec2vec", "embed", "Penguins cannot fly."],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    vec = np.asarray(json.loads(out.strip().splitlines()[-1]), dtype=np.float32).ravel()
    np.testing.assert_allclose(vec, default.encode(["Penguins cannot fly."])[0], atol=1e-4)
