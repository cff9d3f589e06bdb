"""Per-item scores, bootstrap confidence intervals and paired comparisons of evaluation results.

Each task result carries ``items``: what its main score is an average (or a statistic) of.

- ``{"kind": "mean", "unit": ..., "values": [...]}``: the main score is the mean of ``values``:
  per-query nDCG@10 (retrieval, reranking), per-test-text correctness averaged over mteb's
  classification experiments, per-run V-measure (clustering: each k-means run draws its own texts).
- ``{"kind": "spearman", "unit": "pair", "gold": [...], "pred": [...]}``: STS; the main score is
  Spearman's rho of the gold scores and the model's cosines over the pairs.

A bootstrap draw resamples a task's items with replacement and recomputes its statistic. The draws
come from a generator seeded by (seed, task name, number of items), so two models scored on the same
task are resampled on the same items: that is what makes :func:`paired` a paired comparison, and a
suite mean's draw is the mean of its tasks' draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

N_BOOT = 1000
SEED = 0
LEVEL = 0.95


def n_items(items: Mapping[str, Any]) -> int:
    return len(items["values"] if items["kind"] == "mean" else items["gold"])


def point(items: Mapping[str, Any]) -> float:
    """The task's statistic on all its items (equals mteb's main score; checked in the tests)."""
    idx = np.arange(n_items(items))[None, :]
    return float(_stat(items, idx)[0])


def draws(task: str, n: int, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """(n_boot, n) item indices drawn with replacement; the same for every model on the same task."""
    key = hashlib.sha256(f"{seed}:{task}:{n}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
    return rng.integers(0, n, size=(n_boot, n))


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)  # average ranks for ties, as scipy.stats.spearmanr


def _stat(items: Mapping[str, Any], idx: np.ndarray) -> np.ndarray:
    """The statistic for each row of item indices ``idx`` (b, n) -> (b,)."""
    if items["kind"] == "mean":
        return np.asarray(items["values"], dtype=np.float64)[idx].mean(axis=1)
    if items["kind"] == "spearman":
        g = _ranks(np.asarray(items["gold"], dtype=np.float64)[idx])
        p = _ranks(np.asarray(items["pred"], dtype=np.float64)[idx])
        g -= g.mean(axis=1, keepdims=True)
        p -= p.mean(axis=1, keepdims=True)
        den = np.sqrt((g * g).sum(axis=1) * (p * p).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (g * p).sum(axis=1) / den, 0.0)
    raise ValueError(f"unknown item kind {items['kind']!r}")


def boot(task: str, items: Mapping[str, Any], n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """(n_boot,) bootstrap replicates of the task's statistic."""
    return _stat(items, draws(task, n_items(items), n_boot, seed))


def interval(reps: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates."""
    a = (1 - level) / 2
    lo, hi = np.quantile(reps, [a, 1 - a])
    return float(lo), float(hi)


def task_ci(task: str, items: Mapping[str, Any] | None, **kw: Any) -> list[float] | None:
    return list(interval(boot(task, items, **kw))) if items else None


def mean_ci(tasks: Mapping[str, Mapping[str, Any] | None], **kw: Any) -> list[float] | None:
    """CI of the unweighted mean over tasks (``mean (task)``); None when a task has no items."""
    if not tasks or any(v is None for v in tasks.values()):
        return None
    reps = np.mean([boot(t, it, **kw) for t, it in tasks.items()], axis=0)  # type: ignore[arg-type]
    return list(interval(reps))


def _aligned(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a["kind"] == b["kind"] and n_items(a) == n_items(b) and a.get("ids") == b.get("ids")


def paired(
    a: Mapping[str, Mapping[str, Any] | None],
    b: Mapping[str, Mapping[str, Any] | None],
    n_boot: int = N_BOOT,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, dict[str, Any]]:
    """Per task in both, and ``mean`` over them: B - A, its paired-bootstrap CI and a verdict.

    *better* when the whole CI is above 0, *worse* when below, else *inconclusive*. Tasks whose
    items differ (different task data) are reported as not comparable and left out of the mean.
    """
    out: dict[str, dict[str, Any]] = {}
    reps = []
    for task in a:
        ia, ib = a.get(task), b.get(task)
        if task not in b:
            continue
        if ia is None or ib is None or not _aligned(ia, ib):
            out[task] = {"verdict": "not comparable"}
            continue
        idx = draws(task, n_items(ia), n_boot, seed)
        d = _stat(ib, idx) - _stat(ia, idx)
        reps.append(d)
        out[task] = _verdict(point(ib) - point(ia), d, level) | {"a": point(ia), "b": point(ib), "n": n_items(ia)}
    if reps and all(v.get("verdict") != "not comparable" for v in out.values()):
        pa = float(np.mean([v["a"] for v in out.values()]))
        pb = float(np.mean([v["b"] for v in out.values()]))
        out["mean"] = _verdict(pb - pa, np.mean(reps, axis=0), level) | {"a": pa, "b": pb, "n": len(reps)}
    return out


def _verdict(diff: float, reps: np.ndarray, level: float) -> dict[str, Any]:
    lo, hi = interval(reps, level)
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "inconclusive"
    return {"diff": diff, "ci": [lo, hi], "verdict": verdict}


# ------------------------------------------------------------------ per-item scores from mteb's predictions


def sts_items(gold: Sequence[float], pred: Sequence[float]) -> dict[str, Any]:
    return {
        "kind": "spearman",
        "unit": "pair",
        "gold": [float(x) for x in gold],
        "pred": [round(float(x), 7) for x in pred],
    }


def classification_items(test_labels: Sequence[int], predictions: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Correctness of each test text averaged over mteb's experiments (one prediction list each)."""
    y = np.asarray(test_labels)
    hits = np.mean([np.asarray(p) == y for p in predictions], axis=0)
    return {"kind": "mean", "unit": "test text", "values": [float(v) for v in hits]}


def clustering_items(v_measures: Sequence[float]) -> dict[str, Any]:
    return {"kind": "mean", "unit": "k-means run", "values": [float(v) for v in v_measures]}


def retrieval_items(
    run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]], k: int = 10
) -> dict[str, Any]:
    """Per-query nDCG@k with pytrec_eval, as mteb computes its mean (queries in sorted id order)."""
    import pytrec_eval

    ev = pytrec_eval.RelevanceEvaluator({q: dict(d) for q, d in qrels.items()}, {f"ndcg_cut.{k}"})
    per = ev.evaluate({q: {d: float(s) for d, s in docs.items()} for q, docs in run.items()})
    ids = sorted(qrels)
    return {
        "kind": "mean",
        "unit": "query",
        "ids": ids,
        "values": [float(per.get(q, {}).get(f"ndcg_cut_{k}", 0.0)) for q in ids],
    }
