"""The real build: Debian packages fetched with apt-get, pysword, rdata and gensim's test data (30-50 s, network).

Skipped only when the Debian packages cannot be fetched (no apt-get, or no route to a Debian mirror).
"""

from __future__ import annotations

import json
import shutil

import pytest

from dec2vec.corpora import build as build_mod
from dec2vec.errors import SourceError

pytestmark = pytest.mark.integration

GENESIS_1_1 = {
    "query": "In the beginning God created the heaven and the earth.",
    "positive": "In the beginning, God created the heavens and the earth.",
    "negatives": [
        "The earth was formless and empty. Darkness was on the surface of the deep and God’s Spirit was hovering "
        "over the surface of the waters."
    ],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get (Debian/Ubuntu) to fetch wordnet-base, sword-text-* and r-cran-janeaustenr")
    out = tmp_path_factory.mktemp("data")
    cache = tmp_path_factory.mktemp("sources")
    try:
        manifest = build_mod.build(out, cache=cache)
    except SourceError as e:
        if "apt-get" in str(e):
            pytest.skip(f"Debian packages could not be fetched: {e}")
        raise
    return out, cache, manifest


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def total(manifest, name):
    c = manifest["corpora"][name]["counts"]
    return c["train"] + c["valid"]


def test_counts_in_expected_ranges(built):
    _, _, m = built
    assert m["corpora"]["wordnet-word-gloss"]["counts"]["synsets"] == 117_659
    assert m["corpora"]["wordnet-gloss-example"]["counts"]["examples"] == 48_339
    assert 115_000 <= total(m, "wordnet-word-gloss") <= 117_659
    assert 47_000 <= total(m, "wordnet-gloss-example") <= 48_339
    assert 30_500 <= total(m, "bible-kjv-web") <= 31_102
    assert 9_000 <= total(m, "austen") <= 12_000
    assert 1_000 <= total(m, "wiki-gensim") <= 5_500
    words = sum(v for k, v in m["corpora"]["austen"]["counts"].items() if k.startswith("words_"))
    assert 700_000 <= words <= 730_000  # ≈718k words of novels
    for c in m["corpora"].values():  # 2% drawn by group (chapter, scene, conversation): lumpy, so 1-4%
        assert 0.01 < c["counts"]["valid"] / (c["counts"]["train"] + c["counts"]["valid"]) < 0.04


def test_known_records(built):
    out, _, _ = built
    bible = lines(out / "bible-kjv-web.train.jsonl") + lines(out / "bible-kjv-web.valid.jsonl")
    assert GENESIS_1_1 in bible
    assert not any("Glossary" in r["positive"] for r in bible)  # WEB's appended glossary is gone
    assert all(r["query"] and r["positive"] and isinstance(r["negatives"], list) for r in bible)
    wg = lines(out / "wordnet-word-gloss.train.jsonl") + lines(out / "wordnet-word-gloss.valid.jsonl")
    assert {"query": "physical entity", "positive": "an entity that has physical existence"} in wg
    ge = lines(out / "wordnet-gloss-example.train.jsonl") + lines(out / "wordnet-gloss-example.valid.jsonl")
    assert {"query": "a tangible and visible entity; an entity that can cast a shadow",
            "positive": "it was full of rackets, balls and other objects"} in ge  # fmt: skip
    austen = [r["text"] for r in lines(out / "austen.train.jsonl") + lines(out / "austen.valid.jsonl")]
    assert any(t.startswith("It is a truth universally acknowledged, that a single man") for t in austen)
    assert max(len(t.split()) for t in austen) <= 200


def test_manifest_provenance_and_leakage(built):
    out, _, m = built
    on_disk = json.loads((out / "MANIFEST.json").read_text())
    assert on_disk["sources"]["wordnet-base"]["version"] == "1:3.0-37"
    assert on_disk["sources"]["sword-text-kjv"]["upstream_licence_field"] == "public-domain"
    assert on_disk["sources"]["wordnet-base"]["files"]["usr/share/wordnet/data.noun"]
    assert on_disk["sources"]["gensim"]["kind"] == "pypi"
    leak = on_disk["leakage"]
    assert {c["name"] for c in leak["checked"]} | {c["name"] for c in leak["missing"]} == {
        "wikipedia-vital-articles",
        "gensim-lee",
        "rotten-tomatoes",
        "news-articles",
        "reserved-word-pairs",  # WordSim-353 / SimLex-999 pairs (gensim's copies)
        "wordnet-word-sts",  # the word task's pairs
    }
    if any(c["name"] == "wikipedia-vital-articles" for c in leak["checked"]):
        assert m["corpora"]["wiki-gensim"]["counts"]["dropped_leakage_pages"] > 20  # Anarchism, Autism …
    assert (out / "README.md").read_text().count("public domain") >= 2


def test_rerun_keeps_outputs(built):
    out, cache, _ = built
    again = build_mod.build(out, cache=cache, sources=["bible", "austen"])
    assert {r["status"] for r in again["run"].values()} == {"kept"}
