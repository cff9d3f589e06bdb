"""Index build and search on a tiny model: retrieval, incremental and idempotent builds, crash and resume."""

import json

import numpy as np
import pytest
import torch

from dec2vec import Embedder, InputError
from dec2vec.search.chunking import ChunkSpec
from dec2vec.search.indexer import Index, chunk_capacity
from dec2vec.search.store import Store

DOCS = {
    "animals.txt": "the cat sat on the mat . the dog ran over the road !\n\nthe bird is in the blue sky .",
    "city.md": "# city\n\nthe big red car was on the road to the city . the old house is in the city .",
}
ROWS = [
    {"text": "the quick brown fox jumps over the lazy dog", "title": "fox", "topic": "animals"},
    {"text": "the sun and the moon and a star", "title": "sky", "topic": "space"},
    {"text": "a small green tree by the river", "title": "tree", "topic": "nature"},
    {"text": "the new car ran on the road", "title": "car", "topic": "cars"},
]
SPEC = ChunkSpec(14, 3, "tokens")  # rows fit one chunk, whole files take several


@pytest.fixture(scope="module")
def emb(tiny_mean_emb):
    return tiny_mean_emb


def write_corpus(root, rows=ROWS):
    root.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (root / name).write_text(text)
    (root / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


class CountingEncode:
    """Wraps ``emb.encode`` to count the texts that reach the model."""

    def __init__(self, emb, monkeypatch):
        self.texts: list[str] = []
        real = emb.encode

        def encode(texts, *a, **kw):
            self.texts.extend([texts] if isinstance(texts, str) else texts)
            return real(texts, *a, **kw)

        monkeypatch.setattr(emb, "encode", encode)


def contents(db) -> dict[str, tuple]:
    """id -> (text, source, doc_hash, hash, vector) of every stored chunk, and the committed documents."""
    store = Store(db, create=False)
    rows = store.chunks().to_arrow().to_pylist()
    return {r["id"]: (r["text"], r["source"], r["doc_hash"], r["hash"], np.array(r["vector"])) for r in rows}


def assert_same_index(a, b):
    ca, cb = contents(a), contents(b)
    assert sorted(ca) == sorted(cb)
    for k in ca:
        assert ca[k][:4] == cb[k][:4]
        np.testing.assert_allclose(ca[k][4], cb[k][4], atol=1e-5)
    assert Store(a, create=False).committed().keys() == Store(b, create=False).committed().keys()


def test_build_then_search_finds_each_text_first(emb, tmp_path):
    src = write_corpus(tmp_path / "src")
    index = Index(tmp_path / "db", emb)
    report = index.build([src], chunking=SPEC, batch_size=4)
    assert report.indexed == report.documents == 6 and report.files == 3
    assert report.chunks_added == report.chunks_embedded == report.total_chunks == len(index) > 6
    assert report.commits == -(-report.chunks_added // 4) and report.tokens_embedded > report.chunks_added
    for row in ROWS:  # a document queried by its own text (no instruction) is the top hit, at cosine ~1
        top = index.search(row["text"], k=3, instruction=None)[0]
        assert top.text == row["text"] and top.score == pytest.approx(1.0, abs=1e-4)
        assert top.metadata == {"title": row["title"], "topic": row["topic"]} and top.title == row["title"]
        assert top.row == ROWS.index(row) + 1 and top.source == f"{src / 'rows.jsonl'}:{top.row}#0"
    hits = index.search("the cat sat on the mat", k=50)
    assert len(hits) == len(index) and all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    store = Store(tmp_path / "db", create=False)  # chunks of a whole file: path, no row, chunk numbers in order
    animals = sorted((h.chunk, h.text) for h in hits if h.path.endswith("animals.txt"))
    assert [c for c, _ in animals] == list(range(len(animals))) and all(
        h.row is None for h in hits if h.path.endswith("animals.txt")
    )
    assert store.count_documents() == 6 and store.meta_path.is_file()


def test_rebuild_is_a_no_op(emb, tmp_path, monkeypatch):
    src = write_corpus(tmp_path / "src")
    index = Index(tmp_path / "db", emb)
    index.build([src], chunking=SPEC, batch_size=4)
    before = contents(tmp_path / "db")
    counter = CountingEncode(emb, monkeypatch)
    again = Index(tmp_path / "db", emb).build([src / "rows.jsonl", src])  # stored settings; a file named twice
    assert counter.texts == [] and again.chunks_added == 0 and again.unchanged == 6 and again.commits == 0
    assert_same_index(tmp_path / "db", tmp_path / "db")
    assert contents(tmp_path / "db").keys() == before.keys()


def test_changed_file_and_rows_are_reembedded_and_old_chunks_gone(emb, tmp_path, monkeypatch):
    src = write_corpus(tmp_path / "src")
    index = Index(tmp_path / "db", emb)
    index.build([src], chunking=SPEC, batch_size=4)
    old_animals = {t for t, *_ in contents(tmp_path / "db").values() if "cat" in t}
    (src / "animals.txt").write_text("the green tree is by the river .")
    rows = [{"text": "a red star", "title": "new", "topic": "space"}, ROWS[0], {**ROWS[2], "topic": "changed"}]
    (src / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # inserted, shifted, edited, cut
    counter = CountingEncode(emb, monkeypatch)
    report = index.build([src])
    texts = [t for t, *_ in contents(tmp_path / "db").values()]
    assert not old_animals & set(texts) and "the green tree is by the river ." in texts
    assert len(texts) == len(set(texts))  # nothing duplicated
    # only new texts reach the model: the shifted rows and the edited row's unchanged text reuse their vectors
    assert sorted(counter.texts) == sorted(["the green tree is by the river .", "a red star"])
    assert report.chunks_reused == report.chunks_added - 2 == 2 and report.removed == 1  # row 4 is gone
    fresh = tmp_path / "fresh"
    Index(fresh, emb).build([src], chunking=SPEC)
    assert_same_index(tmp_path / "db", fresh)
    top = index.search("a small green tree by the river", k=1, instruction=None)[0]
    assert top.metadata["topic"] == "changed" and top.row == 3


def test_removed_file_kept_unless_prune(emb, tmp_path):
    src = write_corpus(tmp_path / "src")
    index = Index(tmp_path / "db", emb)
    index.build([src], chunking=SPEC)
    n = len(index)
    report = index.build([src / "rows.jsonl"])
    assert report.removed == 0 and len(index) == n
    report = index.build([src / "rows.jsonl"], prune=True)
    assert report.removed == 2 and {h.path for h in index.search("the", k=100)} == {str(src / "rows.jsonl")}


@pytest.mark.parametrize("fail_at", [1, 3])
def test_crash_midway_then_rerun_equals_uninterrupted(emb, tmp_path, monkeypatch, fail_at):
    src = write_corpus(tmp_path / "src")
    Index(tmp_path / "ref", emb).build([src], chunking=SPEC, batch_size=3)
    calls = {"n": 0}
    real = Store.commit_documents

    def crash_on_commit(self, rows):  # the chunks of this batch are in, its documents not yet committed
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise KeyboardInterrupt("simulated crash")
        return real(self, rows)

    monkeypatch.setattr(Store, "commit_documents", crash_on_commit)
    index = Index(tmp_path / "db", emb)
    with pytest.raises(KeyboardInterrupt):
        index.build([src], chunking=SPEC, batch_size=3)
    store = Store(tmp_path / "db", create=False)
    committed_before = store.committed()
    assert len(committed_before) < 6 and store.orphan_keys(committed_before)  # partial, with orphans on disk
    monkeypatch.setattr(Store, "commit_documents", real)
    counter = CountingEncode(emb, monkeypatch)
    report = Index(tmp_path / "db", emb).build([src])
    assert report.unchanged == len(committed_before)  # what was committed is kept, not redone
    assert report.chunks_reused > 0  # the orphaned batch's vectors are reused, not re-embedded
    assert len(counter.texts) == report.chunks_embedded < Index(tmp_path / "ref", emb).store.count()
    assert_same_index(tmp_path / "db", tmp_path / "ref")


def test_model_mismatch_is_refused(emb, tiny_backbone, tmp_path):
    src = write_corpus(tmp_path / "src")
    Index(tmp_path / "db", emb).build([src / "rows.jsonl"], chunking=SPEC)
    other = Embedder.from_recipe("last-token", tiny_backbone, device="cpu")
    with pytest.raises(InputError, match=r"was built with recipe mean .* \(different: recipe\)"):
        Index(tmp_path / "db", other)
    changed = Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    with torch.no_grad():
        changed.backbone.model.layers[0].mlp.down_proj.weight.mul_(1.01)  # as training would: a whole matrix
    with pytest.raises(InputError, match=r"different: weights"):
        Index(tmp_path / "db", changed)
    same = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="bfloat16")
    # the same weights, but vectors of another precision: refused, naming the flag that loads it as built
    with pytest.raises(InputError, match=r"embedded in float32, but this model runs in bfloat16.*--dtype float32"):
        Index(tmp_path / "db", same)


def test_errors(emb, tmp_path):
    with pytest.raises(InputError, match="no index at"):
        Index(tmp_path / "none", emb, create=False)
    index = Index(tmp_path / "db", emb)
    with pytest.raises(InputError, match="does not exist"):
        index.build([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no"):
        index.build([tmp_path / "empty"])
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"text": "also ok"}\n{"text": oops}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:3: malformed JSON"):
        index.build([tmp_path / "bad.jsonl"])
    assert len(index) == 0  # nothing written before every input was read
    cap = chunk_capacity(emb)
    with pytest.raises(InputError, match=f"at most {cap}"):
        index.build([tmp_path / "bad.jsonl"], chunking=ChunkSpec(cap + 1, 0))
    with pytest.raises(InputError, match="holds no documents yet"):
        index.search("a query")
    (tmp_path / "ok.txt").write_text("the cat")
    index.build([tmp_path / "ok.txt"])
    with pytest.raises(InputError, match="query is empty"):
        index.search("  ")
    with pytest.raises(InputError, match="k must be"):
        index.search("cat", k=0)


def test_chunk_settings_change_rechunks(emb, tmp_path):
    src = write_corpus(tmp_path / "src")
    index = Index(tmp_path / "db", emb)
    index.build([src / "animals.txt"], chunking=SPEC)
    n = len(index)
    report = index.build([src / "animals.txt"], chunking=index.chunk_spec(size=40))
    assert report.indexed == 1 and len(index) < n and index.chunk_spec() == ChunkSpec(40, 3, "tokens")
    assert index.chunk_spec(unit="chars") == ChunkSpec(1000, 100, "chars")


def test_large_table_gets_an_ann_index(emb, tmp_path):
    rows = [{"text": f"{w} {v}"} for w in ("the cat", "a dog", "red car", "old tree") for v in range(80)]
    (tmp_path / "many.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = Index(tmp_path / "db", emb)
    index.ann_min_rows = 300
    report = index.build([tmp_path / "many.jsonl"], chunking=SPEC, batch_size=512)
    assert report.ann_index and index.stats()["ann_index"]
    top = index.search("red car 7", k=5, instruction=None)
    assert len(top) == 5 and top[0].score > 0.99
