"""Small builders shared by the training tests: toy JSONL data and configs on tiny models."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from tests.conftest import WORDS

CONTENT = WORDS[:40]


def write_pairs(path: Path, n: int = 16, seed: int = 0, negatives: int = 1) -> Path:
    """Toy retrieval: the positive maps each query word through a fixed word permutation, so bag-of-words
    similarity does not solve it and every recipe starts with a clearly positive loss."""
    rng = random.Random(seed)
    partner = dict(zip(CONTENT, CONTENT[7:] + CONTENT[:7], strict=True))
    with open(path, "w") as f:
        for _ in range(n):
            words = [rng.choice(CONTENT) for _ in range(5)]
            negs = [" ".join(rng.choice(CONTENT) for _ in range(5)) for _ in range(negatives)]
            f.write(
                json.dumps(
                    {"query": " ".join(words), "positive": " ".join(partner[w] for w in words), "negatives": negs}
                )
            )
            f.write("\n")
    return path


def write_texts(path: Path, n: int = 16, seed: int = 0, length: int = 10) -> Path:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(json.dumps({"text": " ".join(rng.choice(CONTENT) for _ in range(length))}) + "\n")
    return path


def tiny_config(
    tmp: Path,
    backbone: Path,
    recipe: str,
    objective: str,
    *,
    encoder: Path | None = None,
    steps: int = 3,
    batch_size: int = 8,
    lr: float = 5e-3,
    data: Path | None = None,
    **top: Any,
) -> dict[str, Any]:
    if data is None:
        data = (
            write_texts(tmp / "text.jsonl")
            if objective in ("simcse", "mntp", "unimae")
            else write_pairs(tmp / "pairs.jsonl")
        )
    model: dict[str, Any] = {"recipe": recipe, "backbone": str(backbone), "max_length": 256 if recipe == "icl" else 64}
    if encoder is not None:
        model["encoder"] = str(encoder)
    if recipe == "icl":  # one short example keeps tiny-tokenizer inputs under the tiny model's length
        model["recipe_options"] = {"task": "match", "examples": [["the cat", "a dog"]]}
    if recipe == "nv-embed":
        model["recipe_options"] = {"num_latents": 8, "num_heads": 2}
    cfg: dict[str, Any] = {
        "model": model,
        "output_dir": str(tmp / "run"),
        "checkpoint_every": 0,
        "seed": 0,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "stages": [
            {"objective": objective, "data": [{"path": str(data)}], "steps": steps, "batch_size": batch_size, "lr": lr}
        ],
    }
    cfg.update(top)
    return cfg


def read_log(run: Path) -> list[dict[str, str]]:
    import csv

    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))
