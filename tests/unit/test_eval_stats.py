"""Bootstrap intervals, paired comparisons, claim verdicts and the standard tier (synthetic data).

The check on the checker for uncertainty: on synthetic per-item scores with a known difference the
paired 95% interval covers it about 95% of the time, and a model compared with itself is never
called better or worse.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dec2vec.evaluation import stats


def _mean_items(values) -> dict:
    return {"kind": "mean", "unit": "query", "values": [float(v) for v in values]}


def test_point_and_interval_of_a_mean():
    rng = np.random.default_rng(0)
    v = rng.random(300)
    items = _mean_items(v)
    assert stats.point(items) == pytest.approx(v.mean())
    lo, hi = stats.task_ci("t", items)
    se = v.std(ddof=1) / np.sqrt(len(v))
    assert lo < v.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)  # percentile bootstrap ~ normal interval


def test_spearman_items_match_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    gold = rng.random(200).round(1)  # ties, as human ratings have
    pred = gold + rng.normal(0, 0.3, 200)
    items = stats.sts_items(gold, pred)
    assert stats.point(items) == pytest.approx(spearmanr(gold, pred).statistic, abs=1e-6)


def test_paired_interval_covers_a_known_difference_about_95_percent():
    rng = np.random.default_rng(2)
    delta, n, trials, covered = 0.03, 150, 300, 0
    for t in range(trials):
        difficulty = rng.normal(0.5, 0.25, n)  # shared by both models: what pairing cancels
        a = difficulty + rng.normal(0, 0.1, n)
        b = difficulty + delta + rng.normal(0, 0.1, n)
        row = stats.paired({f"t{t}": _mean_items(a)}, {f"t{t}": _mean_items(b)}, n_boot=400)[f"t{t}"]
        covered += row["ci"][0] <= delta <= row["ci"][1]
    assert 0.90 <= covered / trials <= 0.985


def test_pairing_narrows_the_interval():
    rng = np.random.default_rng(3)
    difficulty = rng.normal(0.5, 0.3, 200)
    a, b = difficulty, difficulty + 0.02 + rng.normal(0, 0.02, 200)
    row = stats.paired({"t": _mean_items(a)}, {"t": _mean_items(b)})["t"]
    assert row["verdict"] == "better"  # unpaired, the 0.3 spread of difficulty would swamp 0.02
    lo_a, hi_a = stats.task_ci("t", _mean_items(a))
    assert row["ci"][1] - row["ci"][0] < (hi_a - lo_a) / 5


def test_a_model_against_itself_is_always_inconclusive():
    rng = np.random.default_rng(4)
    for seed in range(5):
        items = {
            "ret": _mean_items(rng.random(50)),
            "cls": _mean_items(rng.integers(0, 2, 80)),
            "sts": stats.sts_items(rng.random(100), rng.random(100)),
        }
        rows = stats.paired(items, items, seed=seed)
        assert {r["verdict"] for r in rows.values()} == {"inconclusive"}
        assert all(r["diff"] == 0 for r in rows.values())


def test_clear_differences_get_a_direction_and_the_mean_row():
    rng = np.random.default_rng(5)
    base = rng.random(200)
    a = {"x": _mean_items(base), "y": _mean_items(base)}
    b = {"x": _mean_items(base + 0.1), "y": _mean_items(base - 0.1)}
    rows = stats.paired(a, b)
    assert rows["x"]["verdict"] == "better" and rows["y"]["verdict"] == "worse"
    assert rows["mean"]["diff"] == pytest.approx(0.0) and rows["mean"]["verdict"] == "inconclusive"


def test_different_item_sets_are_not_compared():
    rows = stats.paired({"t": _mean_items([1, 0, 1])}, {"t": _mean_items([1, 0])})
    assert rows["t"]["verdict"] == "not comparable" and "mean" not in rows


def test_mean_ci_needs_every_task():
    assert stats.mean_ci({"a": _mean_items([1, 0]), "b": None}) is None
    ci = stats.mean_ci({"a": _mean_items([1.0] * 10), "b": _mean_items([0.0] * 10)})
    assert ci == [0.5, 0.5]


# ------------------------------------------------------------------------------------ compare and claims


def _results(
    path,
    models: dict[str, dict[str, list[float]]],
    tokens: dict[str, float] | None = None,
    perplexity: dict[str, float] | None = None,
):
    tasks = sorted({t for m in models.values() for t in m})
    doc = {
        "tasks": [{"name": t, "type": "retrieval", "sha256": f"sha-{t}"} for t in tasks],
        "models": [
            {
                "name": name,
                "identity": name,
                "tasks": {
                    t: {"main_score": float(np.mean(v)), "scores": {"items": _mean_items(v)}} for t, v in ts.items()
                },
                "cost": {"tokens_per_text": (tokens or {}).get(name)},
                **({"generation": {"perplexity": perplexity[name]}} if name in (perplexity or {}) else {}),
            }
            for name, ts in models.items()
        ],
    }
    path.write_text(json.dumps(doc))
    return str(path)


def test_compare_cli_on_results_files(tmp_path, capsys):
    from dec2vec.cli import main

    rng = np.random.default_rng(6)
    v = rng.random(120)
    a = _results(tmp_path / "a.json", {"m-a": {"t1": v, "t2": v}})
    b = _results(tmp_path / "b.json", {"m-b": {"t1": v + 0.2, "t2": v}})
    assert main(["eval", "--compare", a, b]) == 0
    out = capsys.readouterr().out
    assert "| t1 |" in out and "better" in out and "inconclusive" in out and "mean (task)" in out


def test_claim_verdicts(tmp_path):
    from dec2vec.evaluation.claims import CLAIMS, Claim, judge_all

    rng = np.random.default_rng(7)
    v = rng.random(200)
    f = _results(
        tmp_path / "r.json",
        {
            "last-token": {"t": v},
            "causal2vec": {"t": v + 0.1},
            "mean (untrained)": {"t": v},
            "unimae": {"t": v - 0.2},
            "llm2vec": {"t": v + rng.normal(0, 0.05, 200)},
        },
        tokens={"causal2vec": 101.0, "icl (untrained)": 266.0, "last-token": 100.0},
        perplexity={"mean (untrained)": 30.0, "unimae": 32.0, "llm2vec": 33.5},
    )
    rows = {r["id"]: r for r in judge_all([f])}
    assert rows["unimae-ppl<=110%"]["verdict"] == "holds" and rows["unimae-ppl<=110%"]["value"] == pytest.approx(
        32 / 30
    )
    assert rows["llm2vec-ppl>110%"]["verdict"] == "holds"  # 33.5 / 30 = 1.117 > 1.10
    assert rows["c2v>=echo"]["verdict"] == "not measured"
    assert rows["c2v>last-token"]["verdict"] == "holds"
    assert rows["c2v>last-token"]["ci"][0] > 0
    assert rows["unimae>base"]["verdict"] == "fails"
    assert rows["llm2vec>base"]["verdict"] == "inconclusive"
    assert rows["concat>eos"]["verdict"] == "not measured"
    assert {c.id for c in CLAIMS} == set(rows)
    tok = judge_all([f], [Claim("tok", "x", "last-token", "causal2vec", "token_ratio", "<=", 0.5)])[0]
    assert tok["verdict"] == "fails" and tok["value"] == pytest.approx(1.01)


# ------------------------------------------------------------------------------------------ standard tier

from tests.unit import test_eval_datasets as _eval_data  # noqa: E402

fake_packages = _eval_data.fake_packages


def test_standard_tier_is_a_deterministic_subset_of_the_full_tasks(fake_packages):
    from dataclasses import replace

    from dec2vec.evaluation import load_task, task_names
    from dec2vec.evaluation.standard import STANDARD_SIZES, digest, load_standard

    sizes = replace(STANDARD_SIZES, vital_test_per_label=1, wiki_queries=4, rerank_queries=2, news_queries=2)
    for name in task_names():
        full = load_task(name, cache_dir=fake_packages)
        std = load_standard(name, sizes=sizes, cache_dir=fake_packages)
        assert set(std.texts()) <= set(full.texts()), name
        assert digest(std) == digest(load_standard(name, sizes=sizes, cache_dir=fake_packages))
    ret = load_standard("wiki-description-retrieval", sizes=sizes, cache_dir=fake_packages).data
    rr = load_standard("wiki-description-reranking", sizes=sizes, cache_dir=fake_packages).data
    assert set(rr.queries) <= set(ret.queries) and len(rr.queries) <= 2
    assert {d for c in rr.candidates.values() for d in c} <= set(ret.corpus)  # embedded once per run
    assert all(d in ret.corpus for q in ret.qrels.values() for d in q)


def test_task_spec_resolves_to_tiers():
    from dec2vec.errors import InputError
    from dec2vec.evaluation.datasets import task_names
    from dec2vec.evaluation.plan import resolve_tasks

    names = task_names()
    assert resolve_tasks(["all"]) == [(n, "full") for n in names]
    assert resolve_tasks(["standard"]) == [(n, "standard") for n in names]
    assert resolve_tasks(["quick"]) == [(n, "quick") for n in names]
    assert resolve_tasks(["all"], "standard") == [(n, "standard") for n in names]  # --tasks all with a tier
    assert resolve_tasks(["lee-sts"], True) == [("lee-sts", "quick")]
    assert resolve_tasks(["lee-sts", "standard"])[0] == ("lee-sts", "full")  # a named task keeps its own tier
    with pytest.raises(InputError, match="unknown tier"):
        resolve_tasks(["all"], "medium")
    with pytest.raises(InputError, match="no tasks"):
        resolve_tasks([])


def test_claims_use_the_last_file_holding_both_models(tmp_path):
    """A baseline named in two reports: the claim reads the report that also holds the other model."""
    from dec2vec.evaluation.claims import Claim, judge_all

    tok = Claim("tok", "x", "echo (untrained)", "causal2vec (untrained)", "token_ratio", "<=", 0.55)
    quick = _results(
        tmp_path / "quick.json",
        {"echo (untrained)": {"t": [0.5]}, "causal2vec (untrained)": {"t": [0.5]}},
        tokens={"echo (untrained)": 200.0, "causal2vec (untrained)": 100.0},
    )
    standard = _results(tmp_path / "std.json", {"echo (untrained)": {"t": [0.5]}}, tokens={"echo (untrained)": 400.0})
    row = judge_all([quick, standard], [tok])[0]
    assert row["value"] == pytest.approx(0.5)  # both from quick, not 100 / 400 across reports
    better = Claim("q", "x", "echo (untrained)", "causal2vec (untrained)", "mean", ">", 0.0)
    rng = np.random.default_rng(3)
    v = rng.random(150)
    a = _results(tmp_path / "a.json", {"echo (untrained)": {"t": v}, "causal2vec (untrained)": {"t": v + 0.3}})
    b = _results(tmp_path / "b.json", {"echo (untrained)": {"t": v + 0.5}})
    assert judge_all([a, b], [better])[0]["verdict"] == "holds"  # paired within a.json, not against b's echo


def test_token_claims_prefer_the_benchmark_text_mix_and_quality_claims_ignore_it(tmp_path):
    """A bench JSON counts tokens on its text mix; it never stands in for a suite score."""
    import json

    from dec2vec.evaluation.claims import Claim, format_verdicts, judge_all

    suite = _results(
        tmp_path / "suite.json",
        {"icl (untrained)": {"t": [0.5, 0.6]}, "causal2vec (untrained)": {"t": [0.7, 0.8]}},
        tokens={"icl (untrained)": 400.0, "causal2vec (untrained)": 100.0},
    )
    bench = tmp_path / "bench.json"
    recipes = [{"name": "icl", "llm_tokens_per_text": 1000.0}, {"name": "causal2vec", "llm_tokens_per_text": 120.0}]
    bench.write_text(json.dumps({"recipes": recipes, "options": {}}))
    tok = Claim("tok", "x", "icl (untrained)|icl", "causal2vec|causal2vec (untrained)", "token_ratio", "<=", 0.15)
    quality = Claim("q", "x", "icl (untrained)", "causal2vec (untrained)", "mean", ">", 0.0)
    for files in ([suite, str(bench)], [str(bench), suite]):  # whatever the order
        rows = judge_all(files, [tok, quality])
        assert (rows[0]["value"], rows[0]["verdict"], rows[0]["texts"]) == (
            pytest.approx(0.12),
            "holds",
            "benchmark text mix",
        )
        assert rows[1]["b_value"] == pytest.approx(0.75)  # from the suite
    assert "(benchmark text mix)" in format_verdicts(judge_all([suite, str(bench)], [tok]))
    only_suite = judge_all([suite], [tok])[0]
    assert (only_suite["value"], only_suite["verdict"], only_suite["texts"]) == (0.25, "fails", "suite texts")
