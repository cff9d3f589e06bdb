"""Held-out validation: retrieval on the ``*.valid.jsonl`` split of a config's contrastive data.

Checkpoints and settings are chosen on this split, never on the evaluation suite (docs/RESULTS.md).
Each source's first ``n`` valid pairs form a pool: every query (with the source's instruction, as
in training) ranks the ``n`` positives of that pool by cosine. Recall@1 and MRR per source, and their
mean, say how well a model does the training task on pairs it never saw.

The trainer runs the same validation during a run (``validate_every``) and appends each result to
``valid.csv``, the run's learning curve; the helpers at the end of this file write, trim and read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
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
    """The valid split of every pair source in ``cfg`` (``X.train.jsonl`` -> ``X.valid.jsonl``): the data of
    stages whose objective reads pairs (contrastive), and the query/positive files of those that read either
    kind (distill: their plain-text files rank nothing)."""
    from .objectives.registry import get_objective

    out: dict[str, ValidSource] = {}
    for stage in cfg.stages:
        kind = get_objective(stage.objective).kind
        if kind == "text":
            continue
        for spec in stage.data:
            train = resolve_data_path(spec.path)
            if kind == "any" and not _holds_pairs(train):
                continue
            if not train.name.endswith(".train.jsonl"):
                raise ConfigError(f"{train}: no validation split known (want NAME.valid.jsonl by NAME.train.jsonl)")
            valid = train.with_name(train.name.replace(".train.jsonl", ".valid.jsonl"))
            if not valid.is_file():
                raise InputError(f"{valid}: validation split missing (run `dec2vec data build`)")
            out[str(spec.name)] = ValidSource(str(spec.name), valid, spec.instruction)
    if not out:
        raise ConfigError("the config has no contrastive data to validate on")
    return list(out.values())


def _holds_pairs(path: Path) -> bool:
    with open(path, "rb") as f:
        first = f.readline()
    try:
        return "query" in json.loads(first)
    except ValueError:
        return False


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


def retrieval_scores(q: np.ndarray, d: np.ndarray) -> dict[str, Any]:
    """q, d: (n, D) L2-normalised, row i of d is the positive of row i of q -> recall@1, MRR and each
    query's reciprocal rank (``rr``, kept so that two models can be compared pair by pair)."""
    sims = q @ d.T  # (n, n)
    gold = np.diag(sims)[:, None]  # (n, 1)
    ranks = 1 + (sims > gold).sum(axis=1)  # (n,) ties count in the model's favour
    rr = 1.0 / ranks
    return {"recall_at_1": float((ranks == 1).mean()), "mrr": float(rr.mean()), "rr": rr.tolist()}


def paired_mrr_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float, float]:
    """B − A of the source-averaged MRR of two ``validate`` results on the same pairs, with the
    evaluation's paired bootstrap 95 % CI (``evaluation.stats.paired``: each source's queries are
    resampled, the same draw for both models), so that a gap between two checkpoints or methods can
    be told from the noise of a few hundred pairs."""
    from ..evaluation import stats

    def items(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {name: {"kind": "mean", "unit": "query", "values": s["rr"]} for name, s in result["sources"].items()}

    mean = stats.paired(items(a), items(b))["mean"]
    return float(mean["diff"]), float(mean["ci"][0]), float(mean["ci"][1])


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def part_spread(d: np.ndarray) -> float:
    """Mean cosine between different texts' vectors (n, D) (``diagnostics.spread``): near 1 when a state is
    the same for every text (a collapsed part, an attention-sink state), well below 1 when it tells texts apart."""
    from ..diagnostics import spread

    return spread(d)


def validate(embedder: Any, cfg: TrainConfig, n: int = 100) -> dict[str, Any]:
    """Scores of ``embedder`` on the valid split of ``cfg``'s contrastive data; ``mean`` averages the sources.

    For a composite embedding (``Recipe.embedding_parts``: Causal2Vec's h_ctx and h_eos) ``parts`` scores
    each part alone, from the same vectors: its mean MRR over the sources, and ``spread``, the mean cosine
    between the positives' part vectors (unrelated texts). A part whose spread nears 1 carries no text:
    that is how the Contextual token's collapse shows, at every validation of a run.
    """
    per: dict[str, dict[str, float]] = {}
    slices: dict[str, slice] = getattr(embedder, "embedding_parts", {})  # an encoder-only model has none
    part_rr: dict[str, list[float]] = {k: [] for k in slices}
    part_spread_: dict[str, list[float]] = {k: [] for k in slices}
    for src in valid_sources(cfg):
        queries, positives = read_pairs(src.path, n)
        q = np.asarray(embedder.encode(queries, instruction=src.instruction, normalize=False))
        d = np.asarray(embedder.encode(positives, normalize=False))
        per[src.name] = {**retrieval_scores(unit_rows(q), unit_rows(d)), "pairs": len(queries)}
        for name, sl in slices.items():
            part_rr[name].append(retrieval_scores(unit_rows(q[:, sl]), unit_rows(d[:, sl]))["mrr"])
            part_spread_[name].append(part_spread(d[:, sl]))
    mean = {k: float(np.mean([s[k] for s in per.values()])) for k in ("recall_at_1", "mrr")}
    parts = {
        name: {"mrr": float(np.mean(part_rr[name])), "spread": float(np.mean(part_spread_[name]))} for name in slices
    }
    return {"sources": per, "mean": mean, "n": n, "parts": parts}


def write_report(result: dict[str, Any], path: Path) -> None:
    from ..foundations.files import write_atomic

    write_atomic(path, json.dumps(result, indent=2) + "\n")


# ---- the learning curve: validation during a run (``validate_every``) ----------------------------

CURVE_FILE = "valid.csv"
CURVE_HEAD = ["step", "stage", "tokens", "wall_s", "mrr", "recall_at_1"]


def curve_columns(sources: list[ValidSource], parts: list[str] | tuple[str, ...] = ()) -> list[str]:
    """valid.csv's header: step, counters, the mean scores, ``<source>.mrr`` and ``<source>.recall_at_1``,
    then ``part:<part>.mrr`` and ``part:<part>.spread`` of a composite embedding's parts."""
    cols = CURVE_HEAD + [f"{s.name}.{k}" for s in sources for k in ("mrr", "recall_at_1")]
    return cols + [f"part:{p}.{k}" for p in parts for k in ("mrr", "spread")]


def curve_row(step: int, stage: str, tokens: int, wall_s: float, result: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"step": step, "stage": stage, "tokens": tokens, "wall_s": f"{wall_s:.1f}"}
    row.update({k: f"{v:.6f}" for k, v in result["mean"].items()})
    for name, scores in result["sources"].items():
        row.update({f"{name}.{k}": f"{scores[k]:.6f}" for k in ("mrr", "recall_at_1")})
    for name, scores in result.get("parts", {}).items():
        row.update({f"part:{name}.{k}": f"{v:.6f}" for k, v in scores.items()})
    return row


def append_curve_row(path: Path, columns: list[str], row: dict[str, Any]) -> None:
    """One row appended and fsynced: a kill leaves at most a torn last line, which ``trim_curve`` drops."""
    import csv
    import io
    import os

    new = not path.exists() or path.stat().st_size == 0
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    if new:
        w.writeheader()
    w.writerow(row)
    with open(path, "a", newline="") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def read_curve(path: Path) -> list[dict[str, str]]:
    """The complete rows of a valid.csv (a torn or unparsable line, e.g. from a kill mid-write, is left out)."""
    import csv

    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        try:
            int(r["step"])
            float(r["mrr"])
        except (KeyError, TypeError, ValueError):
            continue
        out.append(r)
    return out


def trim_curve(path: Path, step: int, columns: list[str] | None = None) -> None:
    """Keep the rows up to ``step`` (the checkpoint a run resumes from), rewritten atomically, so the
    resumed run's rows for later steps replace the killed run's instead of repeating them."""
    import csv
    import io

    from ..foundations.files import write_atomic

    if not path.exists():
        return
    rows = [r for r in read_curve(path) if int(r["step"]) <= step]
    if columns is None:
        with open(path, newline="") as f:
            columns = next(csv.reader(f), CURVE_HEAD)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, buf.getvalue(), durable=True)


@contextmanager
def kept_rng(device: Any) -> Iterator[None]:
    """Run the block without moving any random stream (torch CPU and this device's CUDA, Python, NumPy), so
    that validating during training leaves the training run's dropout, masks and data draws as they were."""
    import random

    from .checkpoint import rng_state

    torch_state = rng_state(device)
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        yield
    finally:
        import torch

        torch.set_rng_state(torch_state["torch"])
        if "cuda" in torch_state:
            torch.cuda.set_rng_state(torch_state["cuda"], device)
        random.setstate(py_state)
        np.random.set_state(np_state)
