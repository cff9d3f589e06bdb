"""Generation retention of the untrained default backbone, SmolLM2-135M-Instruct (about 20 s on a CPU)."""

import math

import pytest

from dec2vec import Embedder
from dec2vec.evaluation.generation import generation_retention, heldout_texts

pytestmark = pytest.mark.integration


def test_untrained_smollm2_still_writes():
    emb = Embedder.from_recipe("mean", device="cpu", dtype="float32")
    texts = heldout_texts(quick=True)[:4]
    r = generation_retention(emb, texts=texts, max_length=128, max_new_tokens=12)
    assert math.isfinite(r.perplexity) and 1 < r.perplexity < 100, r.perplexity  # measured: 41.2
    assert r.texts == 4 and 4 * 64 < r.tokens <= 4 * 127
    assert len(r.continuations) == 4  # three raw prompts and the chat answer
    answer = r.continuations[-1]["continuation"]
    assert "Paris" in answer, answer  # measured: "The capital of France is Paris."
