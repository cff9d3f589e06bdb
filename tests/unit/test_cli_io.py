"""The CLI and file I/O on a tiny saved model."""

import json

import numpy as np
import pytest

from dec2vec import Embedder, InputError
from dec2vec.cli import main
from dec2vec.device import cpu_has_native_bf16, inference_dtype
from dec2vec.io import read_texts, write_embeddings


@pytest.fixture(scope="module")
def saved(tiny_backbone, tiny_encoder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "c2v"
    Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu").save_pretrained(folder)
    # the CLI's vectors are the API's in the CLI's default inference dtype (bf16 on CPUs that run it natively)
    return folder, Embedder.from_pretrained(folder, device="cpu", dtype=inference_dtype(None, None, "cpu"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_recipes_lists_one_line_each(capsys):
    code, out, _ = run(capsys, "recipes")
    assert code == 0 and len(out.strip().splitlines()) == 8 and out.startswith("mean")


def test_info(capsys, saved):
    code, out, _ = run(capsys, "info", saved[0], "--json")
    info = json.loads(out)
    assert code == 0 and info["recipe"] == "causal2vec" and info["embedding_dim"] == 64
    assert info["parameters"]["encoder"] > 0


def test_the_default_inference_dtype_is_bf16_where_the_cpu_runs_it(capsys, saved):
    code, out, _ = run(capsys, "info", saved[0], "--json")
    assert code == 0 and json.loads(out)["dtype"] == ("bfloat16" if cpu_has_native_bf16() else "float32")
    for flags, want in ((["--dtype", "fp32"], "float32"), (["--quantize", "int8"], "float32")):
        code, out, _ = run(capsys, "info", saved[0], "--json", *flags)
        info = json.loads(out)
        assert code == 0 and info["dtype"] == want
    assert info["quantize"].startswith("int8: ")
    assert inference_dtype("float16", None, "cpu") == "float16" and inference_dtype(None, None, "meta") is None


def test_embed_json_matches_api(capsys, saved):
    folder, emb = saved
    code, out, _ = run(capsys, "embed", "--model", folder, "--json", "the cat", "a dog runs")
    vecs = np.array(json.loads(out), dtype=np.float32)
    assert code == 0 and vecs.shape == (2, emb.embedding_dim)
    np.testing.assert_allclose(vecs, emb.encode(["the cat", "a dog runs"]), atol=1e-6)
    code, out, _ = run(capsys, "embed", "-m", folder, "-i", "find animals", "--json", "the cat")
    np.testing.assert_allclose(json.loads(out), emb.encode(["the cat"], instruction="find animals"), atol=1e-6)


@pytest.mark.parametrize("suffix", [".npy", ".jsonl", ".parquet"])
def test_embed_file_to_each_format(capsys, saved, tmp_path, suffix):
    folder, emb = saved
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "the cat"}\n\n{"text": "a dog runs", "id": 7}\n"blue sky"\n')
    dest = tmp_path / f"out{suffix}"
    code, _, err = run(capsys, "embed", "-m", folder, "--input", src, "--output", dest)
    assert code == 0 and "wrote 3 embeddings" in err
    if suffix == ".npy":
        got = np.load(dest)
    elif suffix == ".jsonl":
        rows = [json.loads(line) for line in dest.read_text().splitlines()]
        assert [r["text"] for r in rows] == ["the cat", "a dog runs", "blue sky"]
        got = np.array([r["embedding"] for r in rows], dtype=np.float32)
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(dest)
        got = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(got, emb.encode(["the cat", "a dog runs", "blue sky"]), atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    "content,suffix,match",
    [
        ('{"text": "ok"}\n{"text": "  "}\n', ".jsonl", r"in.jsonl:2: the text is empty"),
        ("\n  \n\n", ".txt", "no texts"),
        ('{"text": "ok"}\n{"text": broken\n', ".jsonl", r"in.jsonl:2: malformed JSON"),
        ('{"text": "ok"}\n{"body": "x"}\n', ".jsonl", r"in.jsonl:2: no 'text' field"),
        ('{"text": "ok"}\n{"text": 5}\n', ".jsonl", r"in.jsonl:2: expected a string, got int"),
        ("", ".txt", "no texts"),
    ],
)
def test_bad_file_lines(capsys, saved, tmp_path, content, suffix, match):
    src = tmp_path / f"in{suffix}"
    src.write_text(content)
    with pytest.raises(InputError, match=match):
        read_texts(src)
    code, _out, err = run(capsys, "embed", "-m", saved[0], "--input", src, "--output", tmp_path / "o.npy")
    assert code == 2 and err.startswith("dec2vec: error:") and "Traceback" not in err
    assert not (tmp_path / "o.npy").exists()


def test_blank_txt_lines_are_skipped(capsys, saved, tmp_path):
    """A blank line anywhere in a .txt file (a trailing one, above all) is no text and no error; line
    numbers in messages still count every line."""
    src = tmp_path / "in.txt"
    src.write_text("\nthe cat\n\n   \nblue sky\n\n")
    got = read_texts(src)
    assert got.texts == ["the cat", "blue sky"] and got.lines == [2, 5]
    code, _, err = run(capsys, "embed", "-m", saved[0], "--input", src, "--output", tmp_path / "o.npy")
    assert code == 0 and "wrote 2 embeddings" in err
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), saved[1].encode(["the cat", "blue sky"]), atol=1e-6)


def test_cli_errors_exit_nonzero(capsys, saved, tmp_path):
    (tmp_path / "in.txt").write_text("the cat\n")
    for argv, match in [
        (("embed", "-m", "nope", "x"), "neither a saved dec2vec model"),
        (("embed", "-m", saved[0], "  "), "item 0: the text is empty"),
        (("embed", "-m", saved[0]), "give texts on the command line or --input"),
        (("embed", "-m", saved[0], "--input", tmp_path / "none.txt", "--json"), "does not exist"),
        (("embed", "-m", saved[0], "x", "--output", tmp_path / "o.csv"), "unsupported output type"),
        (("info", tmp_path / "missing"), "neither a saved dec2vec model"),
        (("embed", "-m", saved[0], "--input", tmp_path / "in.txt"), "--input needs --output"),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert match in err, (argv, err)


def test_cli_truncation_error_names_file_line(capsys, tiny_backbone, tmp_path):
    folder = tmp_path / "short"
    Embedder.from_recipe("mean", tiny_backbone, device="cpu", max_length=12).save_pretrained(folder)
    src = tmp_path / "in.txt"
    src.write_text("the cat\n" + " ".join(["dog"] * 30) + "\n")
    code, _, err = run(capsys, "embed", "-m", folder, "--input", src, "--output", tmp_path / "o.npy", "--no-truncate")
    assert code == 2 and "in.txt:2:" in err and "exceed max_length 12" in err


def test_write_is_atomic_on_failure(tmp_path):
    dest = tmp_path / "out.npy"
    write_embeddings(dest, np.ones((2, 3), dtype=np.float32))
    with pytest.raises(AttributeError):
        write_embeddings(dest, object())  # type: ignore[arg-type]  # fails mid-write
    np.testing.assert_array_equal(np.load(dest), np.ones((2, 3)))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]


def test_atomic_write_gets_ordinary_file_mode(tmp_path):
    """mkstemp's private 0600 must not leak into outputs; a replaced file keeps its own mode."""
    from dec2vec.foundations import files

    fresh = tmp_path / "fresh.npy"
    write_embeddings(fresh, np.ones((1, 2), dtype=np.float32))
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~files.UMASK != 0o600
    fresh.chmod(0o640)
    write_embeddings(fresh, np.ones((1, 2), dtype=np.float32))
    assert fresh.stat().st_mode & 0o777 == 0o640


def test_non_utf8_line(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"the cat\nbad \xff byte\n")
    with pytest.raises(InputError, match=r"in.txt:2: not valid UTF-8"):
        read_texts(src)


def test_cli_truncation_warning_names_file_line(capsys, tiny_backbone, tmp_path):
    folder = tmp_path / "short"
    Embedder.from_recipe("mean", tiny_backbone, device="cpu", max_length=12).save_pretrained(folder)
    src = tmp_path / "in.txt"
    src.write_text("the cat\n" + " ".join(["dog"] * 30) + "\n")
    code, _, err = run(capsys, "embed", "-m", folder, "--input", src, "--output", tmp_path / "o.npy")
    assert code == 0 and "truncated" in err and "in.txt:2" in err
