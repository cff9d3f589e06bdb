"""Held-out validation: retrieval on the ``*.valid.jsonl`` split of a config's contrastive data.

Checkpoints and settings are chosen on this split, never on the evaluation suite (docs/RESULTS.md).
Each source's first ``n`` valid pairs form a pool: every query (with the source's instruction, as
in training) ranks the ``n`` positives of that pool by cosine. Recall@1 and MRR per source, and their
mean, say how well a model does the training task on pairs it never saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from .config import TrainConfig
from .data import parse_record, resolve_data_path


@dataclass(frozen=True)
class ValidSource:
    name: str
    path: Path
    instruction: str | None


def valid_sources(cfg: TrainConfig) -> list[ValidSource]:
    """The valid split of every contrastive source in ``cfg`` (``X.train.jsonl`` -> ``X.valid.jsonl``)."""
    out: dict[str, ValidSource] = {}
    for stage in cfg.stages:
        if stage.objective != "contrastive":
            continue
        for spec in stage.data:
            train = resolve_data_path(spec.path)
            if not train.name.endswith(".train.jsonl"):
                raise ConfigError(f"{train}: no validation split known (want NAME.valid.jsonl by NAME.train.jsonl)")
            valid = train.with_name(train.name.replace(".train.jsonl", ".valid.jsonl"))
            if not valid.is_file():
                raise InputError(f"{valid}: validation split missing (run `dec2vec data build`)")
            out[str(spec.name)] = ValidSource(str(spec.name), valid, spec.instruction)
    if not out:
        raise ConfigError("the config has no contrastive data to validate on")
    return list(out.values())


def read_pairs(path: Path, n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` (query, positive) pairs of a valid file, positives unique (a repeat is a false negative)."""
    queries: list[str] = []
    positives: list[str] = []
    seen: set[str] = set()
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = parse_record(line, "pair", "text")
            except ValueError as e:
                raise InputError(f"{path}:{lineno}: {e}") from None
            assert rec.query is not None and rec.positive is not None
            if rec.positive in seen:
                continue
            seen.add(rec.positive)
            queries.append(rec.query)
            positives.append(rec.positive)
            if len(queries) == n:
                break
    if len(queries) < 2:
        raise InputError(f"{path}: fewer than 2 pairs to validate on")
    return queries, positives


def retrieval_scores(q: np.ndarray, d: np.ndarray) -> dict[str, float]:
    """q, d: (n, D) L2-normalised, row i of d is the positive of row i of q -> recall@1 and MRR."""
    sims = q @ d.T  # (n, n)
    gold = np.diag(sims)[:, None]  # (n, 1)
    ranks = 1 + (sims > gold).sum(axis=1)  # (n,) ties count in the model's favour
    return {"recall_at_1": float((ranks == 1).mean()), "mrr": float((1.0 / ranks).mean())}


def validate(embedder: Any, cfg: TrainConfig, n: int = 100) -> dict[str, Any]:
    """Scores of ``embedder`` on the valid split of ``cfg``'s contrastive data; ``mean`` averages the sources."""
    per: dict[str, dict[str, float]] = {}
    for src in valid_sources(cfg):
        queries, positives = read_pairs(src.path, n)
        q = embedder.encode(queries, instruction=src.instruction, normalize=True)
        d = embedder.encode(positives, normalize=True)
        per[src.name] = {**retrieval_scores(np.asarray(q), np.asarray(d)), "pairs": len(queries)}
    mean = {k: float(np.mean([s[k] for s in per.values()])) for k in ("recall_at_1", "mrr")}
    return {"sources": per, "mean": mean, "n": n}


def write_report(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
