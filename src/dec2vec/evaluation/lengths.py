"""Scores by text length: a model-independent token count, length buckets, and per-bucket scores.

A suite mean hides where a model fails: one trained on short pairs can collapse on paragraphs while
its mean barely moves. Every item a task scores (a retrieval query, an STS pair, a test text) is put
in a bucket by the length of the text it turns on, and the task's statistic is recomputed per bucket
from the per-item scores the run already keeps (``stats``): no model is run again.

Length is counted in *proxy tokens*: words and punctuation marks (``\\w+|[^\\w\\s]``), the same for
every model, so buckets compare models on the same items. Subword tokenizers give somewhat more
(docs/EVALUATION.md states the measured ratio).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import stats
from .tasks import ClassificationData, RetrievalData, STSData, TaskData

_TOKEN = re.compile(r"\w+|[^\w\s]")
# (label, lowest, highest) proxy tokens, inclusive; the last is open-ended
BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("<=16", 0, 16),
    ("17-64", 17, 64),
    ("65-128", 65, 128),
    ("129-256", 129, 256),
    ("257-512", 257, 512),
    (">512", 513, 10**9),
)
MIN_ITEMS = 10  # a bucket with fewer items gets no score: its statistic would be noise


def proxy_tokens(text: str) -> int:
    """Words and punctuation marks of ``text``: a length every model is measured on alike."""
    return len(_TOKEN.findall(text))


def bucket_of(n: int) -> str:
    for label, lo, hi in BUCKETS:
        if lo <= n <= hi:
            return label
    raise ValueError(f"negative length {n}")


def item_lengths(task: TaskData) -> list[int] | None:
    """The length that decides each scored item's bucket, in the order of the task's ``items``.

    Retrieval and reranking: the query's (first) relevant document, since that is the text whose
    embedding must hold up (queries in sorted id order, as ``stats.retrieval_items``). STS: the longer
    text of the pair. Classification: the test text. Clustering (items are k-means runs): None.
    """
    d = task.data
    if isinstance(d, RetrievalData):
        return [proxy_tokens(d.corpus[sorted(d.qrels[q])[0]]) for q in sorted(d.qrels)]
    if isinstance(d, STSData):
        return [max(proxy_tokens(d.texts[i]), proxy_tokens(d.texts[j])) for i, j, _ in d.pairs]
    if isinstance(d, ClassificationData):
        return [proxy_tokens(t) for t in d.test_texts]
    return None


def by_bucket(items: Mapping[str, Any], lengths: Sequence[int], min_items: int = MIN_ITEMS) -> dict[str, Any]:
    """Per bucket: how many items, and the task's statistic on them (None below ``min_items``), in %."""
    if stats.n_items(items) != len(lengths):
        raise ValueError(f"{stats.n_items(items)} scored items but {len(lengths)} lengths")
    labels = [bucket_of(n) for n in lengths]
    out: dict[str, Any] = {}
    for label, _, _ in BUCKETS:
        idx = np.array([i for i, b in enumerate(labels) if b == label], dtype=np.int64)
        if len(idx) == 0:
            continue
        score = float(stats._stat(items, idx[None, :])[0]) * 100 if len(idx) >= min_items else None
        out[label] = {"n": int(len(idx)), "score": score}
    return out


def length_report(result: Mapping[str, Any], tasks: Mapping[str, TaskData]) -> dict[str, dict[str, dict[str, Any]]]:
    """model name -> task name -> bucket -> {n, score}, from a ``dec2vec eval`` result and its tasks' data."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for model in result["models"]:
        per: dict[str, dict[str, Any]] = {}
        for name, entry in model["tasks"].items():
            items = (entry.get("scores") or {}).get("items")
            task = tasks.get(name)
            lengths = item_lengths(task) if task is not None else None
            if items and lengths is not None and stats.n_items(items) == len(lengths):
                per[name] = by_bucket(items, lengths)
        out[model["name"]] = per
    return out


def length_table(report: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Markdown: one row per (task, model), one column per bucket: score (items)."""
    used = [b for b, _, _ in BUCKETS if any(b in t for m in report.values() for t in m.values())]
    head = "| task | model | " + " | ".join(used) + " |\n|---|---|" + "---:|" * len(used) + "\n"
    rows = []
    tasks = sorted({t for m in report.values() for t in m})
    for task in tasks:
        for model, per in report.items():
            if task not in per:
                continue
            cells = []
            for b in used:
                c = per[task].get(b)
                cells.append("" if c is None else ("–" if c["score"] is None else f"{c['score']:.1f}") + f" ({c['n']})")
            rows.append(f"| {task} | {model} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"
