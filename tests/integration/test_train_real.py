"""A few real training steps on SmolLM2-135M-Instruct (+ all-MiniLM-L6-v2 for causal2vec)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dec2vec import Embedder
from dec2vec.train.config import TrainConfig
from dec2vec.train.trainer import Trainer

pytestmark = pytest.mark.integration

PAIRS = [
    (
        "In the beginning God created the heaven and the earth.",
        "In the beginning, God created the heavens and the earth.",
        "The earth was formless and empty.",
    ),
    (
        "And God said, Let there be light: and there was light.",
        'God said, "Let there be light," and there was light.',
        "God saw the light, and saw that it was good.",
    ),
    ("dog", "a domesticated carnivorous mammal kept as a pet", "a large feline of forests"),
    ("river", "a large natural stream of water", "a body of salt water"),
]
TEXTS = [
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must want a wife.",
    "Anarchism is a political philosophy that advocates self-governed societies based on voluntary institutions.",
    "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition.",
    "Autism is a disorder of neural development characterized by impaired social interaction.",
]


def _write(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": q, "positive": p, "negatives": [n]}) + "\n" for q, p, n in PAIRS))
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    return pairs, texts


@pytest.mark.parametrize(
    ("recipe", "objective"), [("causal2vec", "contrastive"), ("llm2vec", "mntp"), ("unimae", "unimae")]
)
def test_real_training_steps_save_and_load(tmp_path, recipe, objective):
    pairs, texts = _write(tmp_path)
    data = pairs if objective == "contrastive" else texts
    cfg = TrainConfig.from_dict(
        {
            "model": {"recipe": recipe, "max_length": 64},
            "output_dir": str(tmp_path / "run"),
            "checkpoint_every": 0,
            "stages": [
                {
                    "objective": objective,
                    "data": [{"path": str(data), "instruction": "Retrieve the same meaning"}],
                    "steps": 2,
                    "batch_size": 4,
                    "lr": 1e-3,
                    "head_lr": 1e-3,
                }
            ],
        }
    )
    out = Trainer(cfg, progress=False).run()
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(rows) == 3
    loaded = Embedder.from_pretrained(out, device="cpu")
    probe = [t for t, *_ in PAIRS]
    after = loaded.encode(probe)
    before = Embedder.from_pretrained(recipe, device="cpu").encode(probe)
    assert np.isfinite(after).all() and after.shape == before.shape
    assert not np.allclose(after, before, atol=1e-4)  # the LoRA update reached the saved weights
