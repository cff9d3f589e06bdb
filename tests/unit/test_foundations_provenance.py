"""library_versions: one provenance record, with the keys that results already written use."""

from __future__ import annotations

import json
from pathlib import Path

from dec2vec.foundations import provenance
from dec2vec.foundations.provenance import NOT_INSTALLED, library_versions

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_core_keys_and_extras():
    v = library_versions(("mteb", "no-such-distribution-dec2vec"))
    assert list(v)[:6] == ["python", "dec2vec", "torch", "transformers", "sentence_transformers", "peft"]
    assert v["python"].count(".") == 2 and v["torch"] != NOT_INSTALLED
    assert v["no-such-distribution-dec2vec"] == NOT_INSTALLED  # said, not left out
    assert "mteb" in v


def test_eval_and_bench_keep_the_keys_of_their_published_results():
    from dec2vec.bench.run import library_versions as bench_versions
    from dec2vec.evaluation.run import versions as eval_versions

    for path in sorted(DOCS.glob("eval/*/results.json")):
        assert set(json.loads(path.read_text())["versions"]) <= set(eval_versions()), path
    checked = 0
    for path in sorted(DOCS.glob("bench/*/*.json")):
        saved = json.loads(path.read_text())
        if isinstance(saved, dict) and "versions" in saved:  # (some are lists of runs without versions)
            assert set(saved["versions"]) <= set(bench_versions()), path
            checked += 1
    assert checked


def test_commit_only_for_this_checkout(monkeypatch, tmp_path):
    provenance.source_commit.cache_clear()
    try:
        commit = provenance.source_commit()
        assert commit is None or len(commit.removesuffix("+dirty")) == 40
        assert ("dec2vec_commit" in library_versions()) == (commit is not None)
        monkeypatch.setenv("PATH", str(tmp_path))  # no git on the machine: no commit, no error
        provenance.source_commit.cache_clear()
        assert provenance.source_commit() is None and "dec2vec_commit" not in library_versions()
    finally:
        provenance.source_commit.cache_clear()
