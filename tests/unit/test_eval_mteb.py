"""A check on the checker: each task type's score from the mteb path, recomputed with scipy/scikit-learn.

A deterministic bag-of-words model embeds small synthetic tasks; the same embeddings are then scored
directly. A misused evaluator (labels in the wrong order, pairs swapped, the wrong split, candidates
ignored) makes these disagree.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("mteb")

from dec2vec.evaluation.datasets import task_names  # noqa: E402
from dec2vec.evaluation.encoders import MtebEncoder, TextModel  # noqa: E402
from dec2vec.evaluation.mteb_tasks import QUICK  # noqa: E402
from dec2vec.evaluation.plan import TaskPlan  # noqa: E402
from dec2vec.evaluation.scoring import evaluate_task  # noqa: E402
from dec2vec.evaluation.tasks import (  # noqa: E402
    ClassificationData,
    ClusteringData,
    RerankingData,
    RetrievalData,
    STSData,
    TaskData,
)
from tests.unit import test_eval_datasets as _eval_data  # noqa: E402

WORDS = [f"w{i}" for i in range(60)]
fake_packages = _eval_data.fake_packages  # the fixture: fake source packages, built in tmp_path


class HashedWords(TextModel):
    """Sum of fixed random vectors of each word, plus a per-text jitter: deterministic, imperfect."""

    name, kind = "hashed-words", "test"

    def __init__(self, dim: int = 32) -> None:
        self.dim = dim
        self.calls: list[tuple[int, str | None]] = []

    def _vec(self, key: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def embed(self, texts: list[str], instruction: str | None) -> np.ndarray:
        self.calls.append((len(texts), instruction))
        rows = [sum((self._vec(w) for w in t.split()), 0.5 * self._vec("jitter:" + t)) for t in texts]
        x = np.asarray(rows, dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def identity(self) -> str:
        return "hashed-words"


def _text(r: random.Random, topic: int, n: int = 6) -> str:
    own = WORDS[topic * 10 : topic * 10 + 10]
    return " ".join(r.choice(own) if r.random() < 0.6 else r.choice(WORDS) for _ in range(n))


def _task(name: str, kind: str, data) -> TaskPlan:
    return TaskPlan(name, kind, False, TaskData(name, kind, "synthetic", False, data, {}), None)


def _run(plan: TaskPlan, settings, model: HashedWords | None = None) -> tuple[dict, MtebEncoder]:
    enc = MtebEncoder(model or HashedWords(), {plan.name: "an instruction"})
    return evaluate_task(enc, plan, settings), enc


# every training text used, so the sklearn refit sees exactly what mteb's classifier saw
SETTINGS = replace(QUICK, samples_per_label=1000, clustering_sample=40, clustering_bootstraps=3, max_length=64)


def test_sts_spearman_matches_scipy():
    from scipy.stats import spearmanr

    r = random.Random(0)
    texts = [_text(r, i % 4) for i in range(16)]
    pairs = [(i, j, float((i % 4 == j % 4) + r.random())) for i in range(16) for j in range(i + 1, 16)]
    plan = _task("syn-sts", "sts", STSData(texts, pairs, 0.0, 2.0))
    scores, enc = _run(plan, SETTINGS)
    e = enc.embed(texts, "an instruction")  # memoised: exactly the rows mteb scored
    cos = [float(e[i] @ e[j]) for i, j, _ in pairs]
    expected = spearmanr([s for _, _, s in pairs], cos).statistic
    assert scores["cosine_spearman"] == pytest.approx(expected, abs=1e-6)
    assert scores["main_score"] == pytest.approx(expected, abs=1e-6)
    assert expected > 0.1  # the synthetic topics are visible to the model


def test_classification_accuracy_matches_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    r = random.Random(1)
    labels = ["b", "a", "c"]  # not sorted: label ids must still line up
    tr = [(_text(r, i % 3), labels[i % 3]) for i in range(30)]
    te = [(_text(r, i % 3), labels[i % 3]) for i in range(24)]
    data = ClassificationData(labels, [t for t, _ in tr], [y for _, y in tr], [t for t, _ in te], [y for _, y in te])
    scores, enc = _run(_task("syn-cls", "classification", data), SETTINGS)
    x_tr = enc.embed(data.train_texts, "an instruction")
    x_te = enc.embed(data.test_texts, "an instruction")
    pred = LogisticRegression(max_iter=100).fit(x_tr, data.train_labels).predict(x_te)
    expected = accuracy_score(data.test_labels, pred)
    assert scores["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert expected > 0.6


def test_clustering_v_measure_matches_sklearn():
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import v_measure_score

    r = random.Random(2)
    items = [(_text(r, i % 4, 8), f"topic{i % 4}") for i in range(48)]
    data = ClusteringData([t for t, _ in items], [y for _, y in items])
    scores, enc = _run(_task("syn-clu", "clustering", data), SETTINGS)
    x = enc.embed(data.texts, "an instruction")
    ids = {name: i for i, name in enumerate(sorted(set(data.labels)))}
    y = np.array([ids[v] for v in data.labels])
    rng = random.Random(SETTINGS.seed)  # mteb's task rng: bootstraps drawn with replacement from it
    vals = []
    for _ in range(SETTINGS.clustering_bootstraps):
        idx = rng.choices(range(len(x)), k=SETTINGS.clustering_sample)
        km = MiniBatchKMeans(n_clusters=4, batch_size=512, n_init=1, random_state=SETTINGS.seed)
        vals.append(v_measure_score(y[idx], km.fit_predict(x[idx])))
    assert scores["v_measure"] == pytest.approx(float(np.mean(vals)), abs=1e-9)


def _ndcg_mrr_recall(scores: np.ndarray, relevant: list[set[int]], k: int = 10) -> tuple[float, float, float]:
    """Binary-relevance nDCG@k, MRR@k and recall@k from a (queries, docs) score matrix."""
    ndcg, mrr, rec = [], [], []
    for s, rel in zip(scores, relevant, strict=True):
        top = np.argsort(-s, kind="stable")[:k]
        gains = [1.0 if d in rel else 0.0 for d in top]
        dcg = sum(g / np.log2(i + 2) for i, g in enumerate(gains))
        ideal = sum(1 / np.log2(i + 2) for i in range(min(len(rel), k)))
        ndcg.append(dcg / ideal)
        mrr.append(next((1 / (i + 1) for i, g in enumerate(gains) if g), 0.0))
        rec.append(sum(gains) / len(rel))
    return float(np.mean(ndcg)), float(np.mean(mrr)), float(np.mean(rec))


def _retrieval_data(seed: int) -> tuple[dict, dict, dict]:
    r = random.Random(seed)
    corpus = {f"d{i}": _text(r, i % 5, 10) for i in range(40)}
    queries = {f"q{i}": " ".join(corpus[f"d{i}"].split()[:4]) + " " + _text(r, i % 5, 2) for i in range(12)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(12)}
    return queries, corpus, qrels


def test_retrieval_ndcg_mrr_recall_match_numpy():
    queries, corpus, qrels = _retrieval_data(3)
    model = HashedWords()
    scores, enc = _run(_task("syn-ret", "retrieval", RetrievalData(queries, corpus, qrels)), SETTINGS, model)
    q = enc.embed(list(queries.values()), "an instruction")  # queries carry the instruction ...
    d = enc.embed(list(corpus.values()), None)  # ... documents none
    doc_ids = list(corpus)
    rel = [{doc_ids.index(x) for x in qrels[qid]} for qid in queries]
    ndcg, mrr, rec = _ndcg_mrr_recall(q @ d.T, rel)
    assert scores["ndcg_at_10"] == pytest.approx(ndcg, abs=1e-4)  # mteb rounds to 5 decimals
    assert scores["mrr_at_10"] == pytest.approx(mrr, abs=1e-4)
    assert scores["recall_at_10"] == pytest.approx(rec, abs=1e-4)
    assert {instr for _, instr in model.calls} == {"an instruction", None}


def test_reranking_scores_only_the_candidates():
    queries, corpus, qrels = _retrieval_data(4)
    r = random.Random(5)
    doc_ids = list(corpus)
    cands = {qid: sorted({*qrels[qid], *r.sample(doc_ids, 7)}) for qid in queries}
    data = RerankingData(queries, corpus, qrels, candidates=cands)
    scores, enc = _run(_task("syn-rr", "reranking", data), SETTINGS)
    q = enc.embed(list(queries.values()), "an instruction")
    d = enc.embed(list(corpus.values()), None)
    sim = np.full((len(queries), len(corpus)), -np.inf)
    full = q @ d.T
    for i, qid in enumerate(queries):
        for c in cands[qid]:
            sim[i, doc_ids.index(c)] = full[i, doc_ids.index(c)]
    rel = [{doc_ids.index(x) for x in qrels[qid]} for qid in queries]
    ndcg, mrr, _ = _ndcg_mrr_recall(sim, rel)
    assert scores["ndcg_at_10"] == pytest.approx(ndcg, abs=1e-4)
    assert scores["mrr_at_10"] == pytest.approx(mrr, abs=1e-4)
    # scored over the whole corpus instead, the numbers differ: candidates really restrict the search
    assert _ndcg_mrr_recall(full, rel)[0] != pytest.approx(ndcg, abs=1e-4)


def test_memo_embeds_each_text_once_per_instruction():
    model = HashedWords()
    enc = MtebEncoder(model, {})
    a = enc.embed(["x y", "y z", "x y"], "i")
    b = enc.embed(["y z", "x y"], "i")
    enc.embed(["x y"], None)
    assert [n for n, _ in model.calls] == [2, 1]
    np.testing.assert_array_equal(a[0], b[1])
    assert enc.cost.texts == 3


# ---------------------------------------------------------------------------------------------- the runner


def test_run_writes_report_json_plots_and_reuses_cached_results(fake_packages, tmp_path, monkeypatch):
    import json

    from dec2vec.evaluation.run import EvalConfig, run

    monkeypatch.setenv("DEC2VEC_HOME", str(fake_packages.parent))  # the fake task data lives in $DEC2VEC_HOME/eval
    lines: list[str] = []
    cfg = EvalConfig(models=[], baselines=["lsa"], tasks=["quick"], out=tmp_path / "rep", generation=False)
    first = run(cfg, say=lines.append)
    for name in ("report.md", "results.json", "scores.png", "tsne.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    saved = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert saved["suite"] == "quick" and len(saved["tasks"]) == len(task_names())
    assert saved["versions"]["mteb"] and saved["settings"]["samples_per_label"] == 8
    lsa = saved["models"][0]
    assert set(lsa["tasks"]) == {t["name"] for t in saved["tasks"]}
    assert all(-1 <= t["main_score"] <= 1 for t in lsa["tasks"].values())
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "tfidf-svd (LSA)" in report and "mean (task)" in report and "![scores](scores.png)" in report
    assert sum("(cached)" in x for x in lines) == 0

    lines.clear()
    second = run(cfg, say=lines.append)  # an interrupted or repeated run reuses every finished result
    assert sum("(cached)" in x for x in lines) == len(task_names())
    for t in first["models"][0]["tasks"]:
        assert second["models"][0]["tasks"][t]["main_score"] == first["models"][0]["tasks"][t]["main_score"]


def test_unknown_task_is_a_clear_error(fake_packages, monkeypatch):
    from dec2vec.errors import InputError
    from dec2vec.evaluation.plan import plan_tasks

    with pytest.raises(InputError, match="neither a dec2vec evaluation task nor an MTEB task"):
        plan_tasks(["no-such-task-anywhere"], quick=False)


@pytest.mark.parametrize("recipe", ["mean", "echo", "icl", "causal2vec"])
def test_every_recipe_reads_the_same_text_budget(recipe, tiny_backbone, tiny_encoder):
    """Echo's second copy and icl's prefix cost tokens, but never cut the text shorter than mean sees it."""
    from dec2vec import Embedder
    from dec2vec.evaluation.encoders import Dec2VecTextModel

    extra = {"encoder": tiny_encoder} if recipe == "causal2vec" else {}
    emb = Embedder.from_recipe(recipe, tiny_backbone, device="cpu", **extra)
    model = Dec2VecTextModel(recipe, emb, text_tokens=12, source=recipe)
    from tests.conftest import WORDS as VOCAB

    long_text, short_text = " ".join(VOCAB * 3), "the cat"
    n_long, n_short = (len(o) for o in emb.text_tokenizer.offsets([long_text, short_text]))
    assert n_long > 12 > n_short
    (short,) = model.count_tokens([short_text], "an instruction")
    (cut,) = model.count_tokens([long_text], "an instruction")
    copies = emb.recipe.text_copies
    assert cut - short == copies * (12 - n_short)  # exactly 12 text tokens per copy, whatever the template
    x = model.embed([long_text, short_text], "an instruction")
    assert x.shape[0] == 2 and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)


# ------------------------------------------------------------------------- per-item scores (the CIs' items)


def _synthetic_plans() -> list[TaskPlan]:
    r = random.Random(5)
    texts = [_text(r, i % 4) for i in range(16)]
    pairs = [(i, j, float((i % 4 == j % 4) + r.random())) for i in range(16) for j in range(i + 1, 16)]
    labels = ["b", "a", "c"]
    tr = [(_text(r, i % 3), labels[i % 3]) for i in range(30)]
    te = [(_text(r, i % 3), labels[i % 3]) for i in range(24)]
    clu = [(_text(r, i % 4, 8), f"topic{i % 4}") for i in range(48)]
    queries, corpus, qrels = _retrieval_data(3)
    cand = {q: sorted(set(sorted(corpus)[:10] + list(qrels[q]))) for q in queries}
    return [
        _task("syn-sts", "sts", STSData(texts, pairs, 0.0, 2.0)),
        _task(
            "syn-cls",
            "classification",
            ClassificationData(labels, [t for t, _ in tr], [y for _, y in tr], [t for t, _ in te], [y for _, y in te]),
        ),
        _task("syn-clu", "clustering", ClusteringData([t for t, _ in clu], [y for _, y in clu])),
        _task("syn-ret", "retrieval", RetrievalData(queries, corpus, qrels)),
        _task("syn-rr", "reranking", RerankingData(queries, corpus, qrels, cand)),
    ]


@pytest.mark.parametrize("plan", _synthetic_plans(), ids=lambda p: p.name)
def test_per_item_scores_aggregate_to_mtebs_main_score(plan):
    """The items the bootstrap resamples give back mteb's main score exactly (5 decimals where mteb rounds);
    classification here undersamples its training set over 3 experiments, so items average experiments."""
    from dec2vec.evaluation import stats

    settings = replace(SETTINGS, samples_per_label=6, n_experiments=3, clustering_bootstraps=5)
    scores, _ = _run(plan, settings)
    items = scores["items"]
    expected_n = {"sts": 120, "classification": 24, "clustering": 5, "retrieval": 12, "reranking": 12}[plan.type]
    assert stats.n_items(items) == expected_n
    assert stats.point(items) == pytest.approx(scores["main_score"], abs=1e-5)
    lo, hi = stats.task_ci(plan.name, items)
    assert lo <= scores["main_score"] + 1e-5 and scores["main_score"] - 1e-5 <= hi


def test_memo_spans_tasks_of_a_run():
    """Texts shared by two tasks (same instruction) are embedded once per model, not once per task."""
    plans = _synthetic_plans()
    model = HashedWords()
    enc = MtebEncoder(model, {"syn-ret": "i", "syn-rr": "i"})
    evaluate_task(enc, plans[3], SETTINGS)
    n = enc.cost.texts
    evaluate_task(enc, plans[4], SETTINGS)  # same queries and corpus
    assert enc.cost.texts == n


def test_standard_run_reports_intervals(fake_packages, tmp_path, monkeypatch):
    import json

    from dec2vec.evaluation.run import EvalConfig, run

    monkeypatch.setenv("DEC2VEC_HOME", str(fake_packages.parent))
    out = tmp_path / "rep"
    cfg = EvalConfig(models=[], baselines=["lsa"], tasks=["standard"], out=out, generation=False, plots=False)
    run(cfg, say=lambda _: None)
    saved = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert saved["suite"] == "standard" and saved["settings"]["clustering_bootstraps"] == 20
    lsa = saved["models"][0]
    for name, t in lsa["tasks"].items():
        lo, hi = t["ci"]
        assert lo - 1e-5 <= t["main_score"] <= hi + 1e-5, name
    assert len(lsa["mean_ci"]) == 2
    assert "95% confidence intervals" in (tmp_path / "rep" / "report.md").read_text()
