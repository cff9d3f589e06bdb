"""The selection split (fixed, hashed, disjoint from evaluation) and the passage-level corpora (issue 26)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from dec2vec.corpora import passages
from dec2vec.corpora.leakage import LeakageFilter
from dec2vec.errors import InputError
from dec2vec.train import selection


def _write_valid(folder, name, n, tag):
    lines = [json.dumps({"query": f"{tag} query {i}", "positive": f"{tag} positive text number {i}"}) for i in range(n)]
    (folder / f"{name}.valid.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def test_draw_is_by_content_not_file_order():
    lines = [json.dumps({"query": f"q{i}", "positive": f"p{i}"}) for i in range(50)]
    shuffled = list(lines)
    random.Random(1).shuffle(shuffled)
    assert selection.draw(lines, 20) == selection.draw(shuffled, 20)
    dup = lines + [json.dumps({"query": "q0", "positive": "other"})]
    assert len({q for q, _ in selection.draw(dup, 100)}) == len(selection.draw(dup, 100))


def test_selection_is_deterministic_blocked_and_disjoint_from_evaluation(tmp_path):
    _write_valid(tmp_path, "words", 250, "w")
    _write_valid(tmp_path, "tiny", 30, "t")
    leaky = LeakageFilter.from_texts(["w positive text number 7"])  # an evaluation text
    out = tmp_path / "sel.jsonl"
    m1 = selection.build_selection(tmp_path, out, sources=("words", "tiny"), per_source=1000, leak_filter=leaky)
    first = out.read_bytes()
    m2 = selection.build_selection(tmp_path, out, sources=("words", "tiny"), per_source=1000, leak_filter=leaky)
    assert out.read_bytes() == first and m1["sha256"] == m2["sha256"]
    assert m1["sources"]["words"] == {"drawn": 250, "dropped_leakage": 1, "dropped_partial_block": 49, "pairs": 200}
    assert m1["sources"]["tiny"]["pairs"] == 30  # fewer than a block: one smaller block
    blocks = selection.read_selection(out, expected_sha256=m1["sha256"])
    assert [len(b) for b in blocks["words"]] == [100, 100] and [len(b) for b in blocks["tiny"]] == [30]
    texts = {t for bl in blocks.values() for b in bl for pair in b for t in pair}
    assert "w positive text number 7" not in texts
    assert json.loads((tmp_path / "sel.json").read_text())["sha256"] == m1["sha256"]
    with pytest.raises(InputError):
        selection.read_selection(out, expected_sha256="0" * 64)
    with pytest.raises(InputError):
        selection.build_selection(tmp_path, out, sources=("absent",), leak_filter=leaky)


class _Embedder:
    """Query i and positive i share a one-hot direction (perfect) unless ``swap`` rotates the positives."""

    def __init__(self, swap: bool = False):
        self.swap = swap

    def encode(self, texts, instruction=None, normalize=True):
        ids = [int(t.rsplit(" ", 1)[1]) for t in texts]
        if self.swap and "positive" in texts[0]:
            ids = ids[1:] + ids[:1]
        x = np.zeros((len(texts), 512), dtype=np.float32)
        x[np.arange(len(texts)), [i % 512 for i in ids]] = 1.0
        return x


def test_validate_selection_scores_within_blocks_and_compares_pooled(tmp_path):
    _write_valid(tmp_path, "words", 200, "w")
    out = tmp_path / "sel.jsonl"
    selection.build_selection(tmp_path, out, sources=("words",), leak_filter=LeakageFilter())
    blocks = selection.read_selection(out)
    good = selection.validate_selection(_Embedder(), blocks)
    bad = selection.validate_selection(_Embedder(swap=True), blocks)
    assert good["pooled"]["mrr"] == 1.0 and good["n"] == 200 and bad["pooled"]["mrr"] == 0.5  # gold ranked 2nd
    diff, lo, hi = selection.paired_pooled_difference(good, bad)
    assert diff < 0 and hi < 0


# ------------------------------------------------------------------------------------------ passage corpora

ROFF = (
    r""".TH OPEN 2 2023-01-01 "Linux"
.SH NAME
open \- open a file
.SH SYNOPSIS
.B int open(const char *path);
.SH DESCRIPTION
The
.BR open ()
system call opens the file specified by path. """
    + " ".join(f"word{i}" for i in range(70))
    + r"""
.SS Creation flags
Short.
.SH SEE ALSO
.BR close (2)
"""
)


def test_man_sections_are_heading_to_section_text():
    name, title, secs = passages.man_sections(ROFF)
    assert name == "open - open a file" and title == "open(2)"
    heads = [h for h, _ in secs]
    assert heads == ["Description", "Creation flags"]  # NAME, SYNOPSIS and SEE ALSO left out
    assert secs[0][1].startswith("The open() system call opens")
    assert passages._fit(secs[1][1]) is None  # under MIN_WORDS
    assert passages.man_sections(".so man2/open.2\n") is None


OSIS = (
    '<chapter sID="Gen.2"/>The first sabbath.(1-3) Particulars about the creation.(4-7)'
    '<hi type="bold">Verses 1-3</hi> commentary text'
    '<chapter sID="Gen.3"/><hi type="bold">Verse 1</hi> no outline here'
)


def test_outline_items_name_the_verses_they_head():
    chapters = passages.outlines(OSIS)
    assert chapters == [("Gen", 2, [("The first sabbath.", 1, 3), ("Particulars about the creation.", 4, 7)])]
    verses = {("Gen", 2, v): " ".join(f"v{v}w{i}" for i in range(25)) for v in range(1, 8)}
    recs, short = passages.outline_passages(chapters, verses)
    assert short == 0 and len(recs) == 2
    assert recs[0].data["query"] == "The first sabbath." and recs[0].data["positive"].startswith("v1w0")
    assert "v4w0" not in recs[0].data["positive"] and recs[0].group == "Gen 2"


class _Halves:
    """A composite embedding: a constant first half (a collapsed h_ctx) and a one-hot second half."""

    hidden_size = 8
    embedding_parts = {"ctx": slice(0, 8), "eos": slice(8, 16)}  # as EmbeddingModel.embedding_parts names them

    def encode(self, texts, instruction=None, normalize=True):
        x = np.zeros((len(texts), 16), dtype=np.float32)
        x[:, 0] = 1.0
        x[np.arange(len(texts)), [8 + int(t.rsplit(" ", 1)[1]) % 8 for t in texts]] = 1.0
        return x


def test_validate_selection_scores_each_part_and_shows_a_collapsed_one():
    blocks = {"src": [[(f"query {i}", f"positive {i}") for i in range(8)]]}
    parts = selection.validate_selection(_Halves(), blocks)["parts"]
    assert parts["ctx"]["spread"] == pytest.approx(1.0) and parts["eos"]["spread"] == pytest.approx(0.0)
    # ties count for the model, so a constant part ranks "perfectly": the spread is what shows it
    assert parts["eos"]["mrr"] == pytest.approx(1.0) and parts["ctx"]["mrr"] == pytest.approx(1.0)
