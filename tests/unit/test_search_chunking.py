"""Chunking and reading index inputs: sizes, overlap, boundaries, coverage, and errors with file and line."""

import json

import pytest

from dec2vec import InputError
from dec2vec.search.chunking import ChunkSpec, chunk_text, unit_spans
from dec2vec.search.documents import collect_files, read_documents

from ..conftest import make_tokenizer

SENTENCES = [
    "the cat sat on the mat .",
    "the dog ran over the road to the city .",
    "a big red car was on the old road !",
    "the bird is in the blue sky and it sat on a tree .",
    "is the quick brown fox over the lazy dog ?",
]
TEXT = " ".join(SENTENCES * 3)


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


def covered(chunks) -> set[int]:
    return {u for c in chunks for u in range(c.first_unit, c.last_unit)}


@pytest.mark.parametrize("size,overlap", [(8, 0), (12, 3), (20, 6), (5, 4)])
def test_token_chunks_sizes_overlap_and_coverage(tok, size, overlap):
    spec = ChunkSpec(size, overlap, "tokens")
    chunks = chunk_text(TEXT, spec, tok)
    n = len(unit_spans(TEXT, "tokens", tok))
    assert covered(chunks) == set(range(n))  # every token is in some chunk
    assert all(0 < c.last_unit - c.first_unit <= size for c in chunks)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.first_unit < b.first_unit  # always moves forward
        assert 0 <= a.last_unit - b.first_unit <= overlap  # overlap never exceeds the setting
    for c in chunks:  # the stored span is the stripped text
        assert TEXT[c.start : c.end] == c.text and c.text == c.text.strip()


def test_cuts_prefer_sentence_ends(tok):
    text = " ".join(["the cat sat on the mat .", "a dog runs !", "is the sky blue ?"] * 5)  # sentences of 4-9 tokens
    chunks = chunk_text(text, ChunkSpec(20, 0, "tokens"), tok)
    assert len(chunks) > 3
    assert all(c.text[-1] in ".!?" for c in chunks)  # the window's last half always holds a sentence end
    assert all(c.text[0] in "tai" for c in chunks)  # so every chunk opens a sentence


def test_without_sentence_ends_cuts_at_whitespace_and_starts_words(tok):
    text = " ".join(["the quick brown fox jumps over the lazy dog"] * 6)
    for spec in (ChunkSpec(7, 2, "tokens"), ChunkSpec(30, 8, "chars")):
        chunks = chunk_text(text, spec, tok)
        for c in chunks:
            assert c.start == 0 or text[c.start - 1] == " "  # never opens mid-word
            assert c.end == len(text) or text[c.end] == " "  # never closes mid-word


def test_char_chunks_hard_cut_when_no_boundary():
    text = "x" * 25
    chunks = chunk_text(text, ChunkSpec(10, 3, "chars"))
    assert [c.text for c in chunks] == ["x" * 10, "x" * 10, "x" * 10, "x" * 4]  # 0-10, 7-17, 14-24, 21-25
    assert covered(chunks) == set(range(25))


def test_short_and_blank_texts(tok):
    assert [c.text for c in chunk_text("  a dog runs  ", ChunkSpec(50, 5), tok)] == ["a dog runs"]
    assert chunk_text("", ChunkSpec(50, 5), tok) == []
    assert chunk_text(" \n\t ", ChunkSpec(4, 1, "chars")) == []


@pytest.mark.parametrize(
    "kwargs,match",
    [({"size": 0}, "at least 1"), ({"size": 4, "overlap": 4}, "overlap"), ({"unit": "words"}, "unit")],
)
def test_bad_chunk_spec(kwargs, match):
    with pytest.raises(InputError, match=match):
        ChunkSpec(**kwargs)


def test_read_each_input_type(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.md").write_text("# Title\n\nthe cat sat .\n")
    (tmp_path / "b.jsonl").write_text('{"text": "a dog", "title": "Dog", "n": 1}\n\n"just a string"\n')
    (tmp_path / "c.csv").write_text('text,topic\n"multi\nline",x\nsecond,y\n')
    pq.write_table(pa.table({"text": ["p1", "p2"], "topic": ["a", None]}), tmp_path / "d.parquet")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "e.txt").write_text("skipped")
    (tmp_path / "notes.log").write_text("not an input type")
    files = collect_files([tmp_path])
    assert [f.name for f in files] == ["a.md", "b.jsonl", "c.csv", "d.parquet"]
    docs = {f.name: read_documents(f) for f in files}
    assert docs["a.md"][0].row is None and docs["a.md"][0].text.startswith("# Title")
    assert [(d.row, d.text, d.metadata) for d in docs["b.jsonl"]] == [
        (1, "a dog", {"title": "Dog", "n": 1}),
        (3, "just a string", {}),
    ]
    assert [(d.row, d.text, d.metadata) for d in docs["c.csv"]] == [
        (2, "multi\nline", {"topic": "x"}),
        (4, "second", {"topic": "y"}),
    ]
    assert [(d.row, d.text, d.metadata) for d in docs["d.parquet"]] == [
        (1, "p1", {"topic": "a"}),
        (2, "p2", {"topic": None}),
    ]
    assert docs["b.jsonl"][0].key == f"{tmp_path / 'b.jsonl'}:1"
    assert collect_files([tmp_path / "b.jsonl", tmp_path])[0].name == "b.jsonl"  # named first, no duplicates
    assert len(collect_files([tmp_path / "b.jsonl", tmp_path])) == 4


def test_content_hash_covers_text_metadata_and_settings(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "a", "t": 1}\n{"text": "a", "t": 2}\n{"text": "a", "t": 1}\n')
    d1, d2, d3 = read_documents(tmp_path / "a.jsonl")
    assert d1.content_hash() == d3.content_hash() != d2.content_hash()
    assert d1.content_hash("tokens:8:2") != d1.content_hash("tokens:8:3")


@pytest.mark.parametrize(
    "name,body,match",
    [
        ("empty.txt", "  \n", "empty.txt: the file is empty"),
        ("bad.jsonl", '{"text": "ok"}\n{"text": "ok"\n', r"bad.jsonl:2: malformed JSON"),
        ("nofield.jsonl", '{"text": "ok"}\n\n{"body": "x"}\n', r"nofield.jsonl:3: no 'text' field \(fields: body\)"),
        ("blank.jsonl", '{"text": "ok"}\n{"text": "  "}\n', r"blank.jsonl:2: the text is empty"),
        ("num.jsonl", '{"text": 5}\n', r"num.jsonl:1: field 'text' should be a string"),
        ("list.jsonl", "[1, 2]\n", r"list.jsonl:1: expected a JSON object"),
        ("nocol.csv", "body\nx\n", r"nocol.csv:1: no 'text' column"),
        ("blank.csv", "text,n\nok,1\n ,2\n", r"blank.csv:3: the text is empty"),
        ("extra.csv", "text\nok\nok,extra\n", r"extra.csv:3: more fields"),
        ("nothing.jsonl", "\n\n", r"nothing.jsonl: no documents"),
    ],
)
def test_bad_inputs_name_file_and_line(tmp_path, name, body, match):
    p = tmp_path / name
    p.write_text(body)
    with pytest.raises(InputError, match=match):
        read_documents(p)


def test_bad_utf8_and_parquet(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"ok\xff\xfe")
    with pytest.raises(InputError, match=r"bin.txt: not valid UTF-8 \(invalid start byte at byte 2\)"):
        read_documents(tmp_path / "bin.txt")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="bad.parquet: not a readable Parquet file"):
        read_documents(tmp_path / "bad.parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["ok", ""]}), tmp_path / "e.parquet")
    with pytest.raises(InputError, match="e.parquet: row 2: the text is empty"):
        read_documents(tmp_path / "e.parquet")


def test_collect_files_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        collect_files([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.log").write_text("x")
    with pytest.raises(InputError, match="holds no .txt, .md, .jsonl, .csv, .parquet files"):
        collect_files([tmp_path / "empty"])
    (tmp_path / "a.pdf").write_text("x")
    with pytest.raises(InputError, match="unsupported input type '.pdf'"):
        collect_files([tmp_path / "a.pdf"])
    with pytest.raises(InputError, match="no input"):
        collect_files([])


def test_jsonl_metadata_roundtrips_as_json(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"text": "x", "tags": ["a", "b"], "n": {"k": 1}}) + "\n")
    (doc,) = read_documents(tmp_path / "m.jsonl")
    assert doc.metadata == {"tags": ["a", "b"], "n": {"k": 1}}
