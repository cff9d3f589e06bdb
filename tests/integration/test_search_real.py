"""Index, search and ask on a few Wikipedia Vital Articles summaries with the real SmolLM2 backbone."""

import json

import pytest
import torch

from dec2vec import Embedder
from dec2vec.search.chunking import ChunkSpec, chunk_text
from dec2vec.search.indexer import Index, chunk_capacity
from dec2vec.search.rag import ask
from dec2vec.search.vital import vital_rows, write_vital_corpus

pytestmark = pytest.mark.integration

TITLES = ["Euclid", "Sydney Opera House", "Beekeeping", "Marco Polo"]


@pytest.fixture(scope="module")
def emb():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine, two OpenMP threads spin-wait on each other
    yield Embedder.from_recipe("echo", device="cpu", dtype="float32")
    torch.set_num_threads(n)


def test_vital_corpus_rows_and_prefix(tmp_path):
    rows = vital_rows()
    assert len(rows) == 10033 and all(r["text"].strip() and r["title"] for r in rows)
    assert vital_rows(50) == rows[:50]  # a larger limit only appends rows
    dest = write_vital_corpus(tmp_path / "v.jsonl", 3)
    mtime = dest.stat().st_mtime_ns
    assert [json.loads(line)["title"] for line in dest.read_text().splitlines()] == [r["title"] for r in rows[:3]]
    assert write_vital_corpus(dest, 3).stat().st_mtime_ns == mtime  # unchanged content: not rewritten


def test_real_tokenizer_chunks_fit_the_model(emb):
    text = " ".join(r["text"] for r in vital_rows(40))
    cap = chunk_capacity(emb)
    assert 200 < cap < 256  # echo: the text twice in 512 tokens
    for c in chunk_text(text, ChunkSpec(cap, 32), emb.tokenizer):
        lay = emb.layouts([c.text])[0]
        assert len(lay.ids) <= emb.max_length  # never truncated by the embedder


def test_search_and_ask_on_vital_summaries(emb, tmp_path):
    by_title = {r["title"]: r for r in vital_rows()}
    src = tmp_path / "vital.jsonl"
    src.write_text("".join(json.dumps(by_title[t]) + "\n" for t in TITLES))
    index = Index(tmp_path / "db", emb)
    report = index.build([src])
    assert report.indexed == 4 and report.truncated == 0
    hits = index.search("Who is known as the father of geometry?", k=2)
    assert hits[0].title == "Euclid"  # measured: 0.82 for Euclid, 0.79 for Marco Polo
    answer = ask(index, "Who is known as the father of geometry?", k=2, max_new_tokens=24)
    assert answer.text and [h.id for h in answer.sources] == [h.id for h in hits]
    assert "Euclid" in answer.text, answer.text  # measured: "The father of geometry is Euclid."
