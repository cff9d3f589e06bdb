"""`dec2vec eval --tasks quick` end to end on the real default SmolLM2 and the real package-built tasks.

No cached results are reused (``--no-cache``), so this is the quick suite a user runs, through mteb.
Its wall time on this machine is in docs/EVALUATION.md; tests do not time it.
"""

from __future__ import annotations

import json

import pytest

from dec2vec.cli import main

pytestmark = pytest.mark.integration
pytest.importorskip("mteb")


def test_quick_suite_on_the_real_backbone(tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["eval", "--models", "mean", "--baselines", "lsa", "--tasks", "quick", "--out", str(out), "--no-cache"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in res["models"]] == ["tfidf-svd (LSA)", "mean (untrained)"]
    mean = res["models"][1]["tasks"]
    assert set(mean) == {t["name"] for t in res["tasks"]} and len(mean) == 10
    # far above chance, so a misaligned label, pair or query id would show: chance is ~0 for STS,
    # 1/11 for topics, 1/2 for sentiment, ~0.1 nDCG@10 for 20 queries over 120 documents
    assert mean["lee-sts"]["main_score"] > 0.3
    assert mean["vital-topic-classification"]["main_score"] > 0.4
    assert mean["wiki-description-retrieval"]["main_score"] > 0.25
    cost = res["models"][1]["cost"]
    assert cost["tokens_per_text"] > 10 and cost["texts_per_second"] > 0
    gen = res["models"][1]["generation"]
    assert 5 < gen["perplexity"] < 100 and "Paris" in gen["continuations"][-1]["continuation"]
    report = (out / "report.md").read_text()
    assert "mean (untrained)" in report and "Generation retention" in report
    assert (out / "scores.png").stat().st_size > 0 and (out / "tsne.png").stat().st_size > 0


def test_hub_task_offline_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    rc = main(["eval", "--models", "lsa", "--baselines", "none", "--tasks", "STS12", "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "MTEB task 'STS12' needs its data from the Hugging Face hub" in capsys.readouterr().err
