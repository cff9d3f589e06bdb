"""Streaming file embedding: lazy reading, block-wise atomic writes, the CLI's flat-memory path."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from dec2vec import InputError
from dec2vec.cli import main
from dec2vec.foundations.files import remove_stale_temps
from dec2vec.io import EmbeddingWriter, count_texts, iter_texts, line_of, write_embeddings


def test_iter_texts_is_lazy_and_counts_lines(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": ""}\n')
    it = iter_texts(p)
    assert next(it) == (1, "a") and next(it) == (3, "b")
    with pytest.raises(InputError, match=r"t.jsonl:4: the text is empty"):
        next(it)
    with pytest.raises(InputError, match=r":4:"):
        count_texts(p)
    assert line_of(p, 1) == 3


@pytest.mark.parametrize("suffix", [".npy", ".jsonl", ".parquet"])
def test_block_writer_equals_one_shot_writer(tmp_path, suffix):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((7, 3)).astype(np.float32)
    texts = [f"t{i}" for i in range(7)]
    write_embeddings(tmp_path / f"one{suffix}", emb, texts)
    with EmbeddingWriter(tmp_path / f"blocks{suffix}", 7, 3, with_texts=True) as w:
        for a, b in ((0, 3), (3, 6), (6, 7)):
            w.write(emb[a:b], texts[a:b])
    one, blocks = (tmp_path / f"one{suffix}").read_bytes(), (tmp_path / f"blocks{suffix}").read_bytes()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        a, b = pq.read_table(tmp_path / f"one{suffix}"), pq.read_table(tmp_path / f"blocks{suffix}")
        assert a.to_pylist() == b.to_pylist()
    else:
        assert one == blocks


def test_block_writer_is_atomic(tmp_path):
    dest = tmp_path / "e.npy"
    with pytest.raises(RuntimeError), EmbeddingWriter(dest, 4, 2) as w:
        w.write(np.zeros((2, 2), np.float32))
        raise RuntimeError("interrupted")
    assert not dest.exists() and not list(tmp_path.iterdir())  # no temp file left either
    with pytest.raises(ValueError, match="2 rows written, 4 expected"), EmbeddingWriter(dest, 4, 2) as w:
        w.write(np.zeros((2, 2), np.float32))
    assert not dest.exists()
    with pytest.raises(ValueError, match="does not fit"), EmbeddingWriter(dest, 2, 2) as w:
        w.write(np.zeros((3, 2), np.float32))
    assert not list(tmp_path.iterdir())


def test_embed_file_streams_the_same_vectors(tiny_backbone, tmp_path, capsys):
    from dec2vec import Embedder

    texts = ["the cat sat", "a dog runs", "blue sky", "the big red car", "the sun", "old house"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    model = tmp_path / "m"
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="float32")
    emb.save_pretrained(model)
    args = [
        "embed",
        "--model",
        str(model),
        "--input",
        str(src),
        "--device",
        "cpu",
        "--chunk-size",
        "4",
        "--dtype",
        "fp32",
    ]
    assert main([*args, "--output", str(tmp_path / "o.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), emb.encode(texts), atol=1e-6)
    assert main([*args, "--output", str(tmp_path / "o.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts and [r["index"] for r in rows] == list(range(6))
    assert "wrote 6 embeddings" in capsys.readouterr().err


def test_embed_file_bad_line_fails_before_loading(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('"fine"\n""\n"also fine"\n')
    assert main(["embed", "--model", "/nonexistent", "--input", str(src), "--output", str(tmp_path / "o.npy")]) == 2
    assert "in.jsonl:2: the text is empty" in capsys.readouterr().err  # the file is checked before the model loads
    with pytest.raises(SystemExit) as stop:
        main(["embed", "--model", "mean", "--input", str(src), "--output", "o.npy", "--chunk-size", "0"])
    assert stop.value.code == 2 and "--chunk-size: expected a positive integer" in capsys.readouterr().err


WRITER = """
import sys, time
import numpy as np
from dec2vec.io import EmbeddingWriter
w = EmbeddingWriter(sys.argv[1], 4, 2)
w.write(np.zeros((2, 2), np.float32))
print("writing", flush=True)
time.sleep(120)
"""


def test_temp_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    """kill -9 mid-write leaves a hidden .e.npy.XXXXXXXX.npy that no cleanup code ran for; the next
    write of the same output removes it. A live writer's file, a file younger than this process and
    a user's file that only looks alike are kept."""
    dest = tmp_path / "e.npy"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(dest)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        (temp,) = list(tmp_path.iterdir())
        assert temp.name.startswith(".e.npy.") and temp.suffix == ".npy"
        hour_ago = time.time() - 3600
        os.utime(temp, (hour_ago, hour_ago))  # as a run started later sees it
        write_embeddings(dest, np.ones((1, 2), np.float32))
        assert temp.exists()  # its writer holds the lock: alive, however old the file
    finally:
        writer.kill()  # SIGKILL: no cleanup runs
        writer.wait()
    assert temp.exists()
    fresh = tmp_path / ".e.npy.abcd1234.npy"  # unlocked but younger than this process: maybe being created
    fresh.write_bytes(b"")
    lookalike = tmp_path / ".e.npy.notes.npy"
    lookalike.write_bytes(b"")
    os.utime(lookalike, (hour_ago, hour_ago))
    write_embeddings(dest, np.ones((1, 2), np.float32))
    assert not temp.exists() and fresh.exists() and lookalike.exists()
    assert remove_stale_temps(dest) == []
