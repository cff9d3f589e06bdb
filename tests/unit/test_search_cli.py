"""`dec2vec index/search/ask` on a tiny saved model, RAG prompt budgeting, and a build killed with SIGKILL."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from dec2vec import Embedder
from dec2vec.cli import main
from dec2vec.search.indexer import Hit, Index
from dec2vec.search.rag import ask, build_prompt, truncate_tokens
from dec2vec.search.store import Store

from ..conftest import make_tokenizer

ROWS = [
    "the cat sat on the mat",
    "a dog runs on the road",
    "the sun and the moon and a star",
    "a small green tree by the river",
    "the old house in the big city",
]


@pytest.fixture(scope="module")
def saved(tiny_backbone, tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models gain nothing from threads, and a busy machine makes them spin
    folder = tmp_path_factory.mktemp("model") / "mean"
    Embedder.from_recipe("mean", tiny_backbone, device="cpu").save_pretrained(folder)
    yield folder
    torch.set_num_threads(n)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_rows(path, texts):
    path.write_text("".join(json.dumps({"text": t, "title": f"t{i}"}) + "\n" for i, t in enumerate(texts)))
    return path


def test_cli_build_search_ask_info(capsys, saved, tmp_path):
    src = write_rows(tmp_path / "rows.jsonl", ROWS)
    db = tmp_path / "db"
    code, out, err = run(capsys, "index", "build", "--db", db, "--input", src, "--model", saved, "--chunk-size", "16")
    assert code == 0 and "5 indexed" in out and "committed batch 1" in err
    code, out, _ = run(capsys, "index", "build", "--db", db, "--input", src, "--json", "-q")  # the stored model
    assert code == 0 and json.loads(out)["unchanged"] == 5 and json.loads(out)["chunks_embedded"] == 0
    code, out, _ = run(capsys, "search", "--db", db, ROWS[3], "-k", "2", "--json", "--no-instruction")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 2 and hits[0]["text"] == ROWS[3] and hits[0]["row"] == 4
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4) and hits[0]["metadata"] == {"title": "t3"}
    code, out, _ = run(capsys, "search", "--db", db, "a green tree")
    assert code == 0 and out.startswith("1. ") and "rows.jsonl:" in out and len(out.splitlines()) == 10
    code, out, _ = run(capsys, "ask", "--db", db, "where is the tree?", "-k", "2", "--max-new-tokens", "3", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["mode"] in ("generated", "extractive") and len(answer["sources"]) == 2
    assert answer["citations"] and answer["answer"].endswith("]")
    code, out, err = run(capsys, "ask", "--db", db, "where is the tree?", "-k", "2", "--mode", "extractive")
    assert code == 0 and "\nSources:\n[1] " in out and "[2] " in out and "answer: extractive" in err
    code, out, err = run(capsys, "ask", "--db", db, "where is the tree?", "--mode", "generate", "--max-new-tokens", "2")
    assert code == 0 and out.startswith("I cannot answer that from the indexed documents.\n") and "answer: none" in err
    code, out, _ = run(capsys, "index", "info", "--db", db, "--json")
    info = json.loads(out)
    assert code == 0 and info["documents"] == 5 and info["chunks"] == 5 and info["model_ref"] == str(saved)
    assert info["chunking"] == {"size": 16, "overlap": 16 // 8, "unit": "tokens"}


def test_cli_new_index_uses_the_default_model(capsys, saved, tmp_path, monkeypatch):
    """No --model: a new index is built with the default model of embed and serve (here a tiny stand-in)."""
    import dec2vec.search.commands as search_commands
    from dec2vec.pretrained import DEFAULT_MODEL

    assert search_commands.DEFAULT_MODEL == DEFAULT_MODEL  # the CLI's default is the package's one default
    monkeypatch.setattr(search_commands, "DEFAULT_MODEL", str(saved))  # never load the real 135M model here
    src = write_rows(tmp_path / "rows.jsonl", ROWS[:2])
    code, _, err = run(capsys, "index", "build", "--db", tmp_path / "db", "--input", src)
    assert code == 0 and f"with {saved}" in err
    code, out, _ = run(capsys, "index", "info", "--db", tmp_path / "db", "--json")
    assert code == 0 and json.loads(out)["model_ref"] == str(saved)


def test_cli_errors(capsys, saved, tmp_path):
    src = write_rows(tmp_path / "rows.jsonl", ROWS[:2])
    code, _, err = run(capsys, "search", "--db", tmp_path / "nothing", "query")
    assert code == 2 and "no index at" in err
    code, _, err = run(capsys, "index", "build", "--db", tmp_path / "db", "--model", saved)
    assert code == 2 and "give --input" in err
    code, _, err = run(capsys, "index", "build", "--db", tmp_path / "db", "--input", src, "--limit", "3")
    assert code == 2 and "--limit applies to --demo-corpus" in err
    code, _, err = run(capsys, "index", "build", "--db", tmp_path / "db", "--input", tmp_path / "x.jsonl")
    assert code == 2 and "does not exist" in err
    assert run(capsys, "index", "build", "--db", tmp_path / "db", "--input", src, "--model", saved)[0] == 0
    other = tmp_path / "other"
    Embedder.from_recipe("last-token", Embedder.from_pretrained(saved).config.backbone).save_pretrained(other)
    code, _, err = run(capsys, "search", "--db", tmp_path / "db", "cat", "--model", other)
    assert code == 2 and "different: recipe" in err


def test_an_index_keeps_its_precision(capsys, saved, tmp_path):
    """Built at the default flags, searched in that dtype without flags, refused in another (issue 28)."""
    src = write_rows(tmp_path / "rows.jsonl", ROWS[:2])
    db = tmp_path / "db"
    assert run(capsys, "index", "build", "--db", db, "--input", src, "--model", saved, "--dtype", "fp32")[0] == 0
    assert Store(db, create=False).read_meta()["precision"] == {"dtype": "float32", "quantize": None}
    code, out, _ = run(capsys, "search", "--db", db, ROWS[1], "-k", "1", "--json", "--no-instruction")
    assert code == 0 and json.loads(out)[0]["score"] == pytest.approx(1.0, abs=1e-4)  # float32, as built
    code, _, err = run(capsys, "search", "--db", db, "cat", "--dtype", "bf16")
    assert code == 2 and "was embedded in float32, but this model runs in bfloat16" in err and "--dtype float32" in err


def test_truncate_and_prompt_budget():
    tok = make_tokenizer()
    text = " ".join(["the cat sat on the mat ."] * 20)
    assert truncate_tokens(tok, "a dog", 10) == "a dog"
    cut = truncate_tokens(tok, text, 12)
    assert cut.endswith(" …") and text.startswith(cut[:-2]) and len(tok(cut[:-2])["input_ids"]) <= 12
    hits = [Hit(0.9 - i / 10, text, f"f.txt#{i}", "f.txt", None, i, {}, f"f.txt#{i}") for i in range(4)]
    for budget in (700, 400):  # the instructions alone take ~210 tokens of this tiny vocabulary
        prompt, passages = build_prompt(tok, "where is the cat?", hits, budget)
        assert len(tok(prompt)["input_ids"]) <= budget and len(passages) == 4
        assert "[1] (f.txt#0)" in prompt and "[4] (f.txt#3)" in prompt and prompt.endswith("Answer:")
    prompt, passages = build_prompt(tok, "where is the cat?", hits, 270)  # too small for 4 useful passages
    assert 1 <= len(passages) < 4 and len(tok(prompt)["input_ids"]) <= 270
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    prompt, _ = build_prompt(tok, "where is the cat?", hits[:1], 400)
    assert prompt.startswith("<|user|>Answer the question") and prompt.endswith(
        "Question: where is the cat?<|assistant|>"
    )


def test_ask_answers_from_the_retrieved_sources(saved, tmp_path):
    src = write_rows(tmp_path / "rows.jsonl", ROWS)
    index = Index(tmp_path / "db", Embedder.from_pretrained(saved, device="cpu"))
    index.build([src])
    answer = ask(index, "a small green tree", k=3, max_new_tokens=5)
    assert [h.id for h in answer.sources] == [h.id for h in index.search("a small green tree", k=3)]
    assert "Question: a small green tree" in answer.prompt and ROWS[3] in answer.prompt
    expected = index.embedder.backbone.generate(
        **index.embedder.tokenizer(answer.prompt, return_tensors="pt"), max_new_tokens=5, do_sample=False
    )
    n = len(index.embedder.tokenizer(answer.prompt)["input_ids"])
    assert answer.generated == index.embedder.tokenizer.decode(expected[0, n:], skip_special_tokens=True).strip()
    # the random model writes noise, which no source supports: the answer quotes the best source sentence
    assert answer.mode == "extractive" and "not supported" in answer.reason
    assert answer.text == f"{answer.sources[answer.citations[0] - 1].text} [{answer.citations[0]}]"


def test_sigkill_midway_then_rerun_equals_uninterrupted(capsys, saved, tmp_path):
    src = write_rows(tmp_path / "rows.jsonl", [f"{w} {i}" for i in range(60) for w in ("the cat", "a dog")])
    argv = ["index", "build", "--input", src, "--model", saved, "--batch", "2", "--chunk-size", "16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "dec2vec.cli", *map(str, argv), "--db", str(tmp_path / "db")],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    seen = 0
    for line in child.stderr:  # progress lines: kill -9 right after the third commit
        seen += line.startswith("committed batch")
        if seen == 3:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=60)
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    store = Store(tmp_path / "db", create=False)
    assert 6 <= len(store.committed()) < 120  # killed midway: some documents committed, not all
    argv[argv.index("--batch") + 1] = "64"  # the batch size does not change what is stored
    code, out, _ = run(capsys, "index", "build", "--db", tmp_path / "db", *argv[2:], "--json")
    report = json.loads(out)
    assert code == 0 and report["unchanged"] == len(store.committed()) and report["total_documents"] == 120
    assert run(capsys, "index", "build", "--db", tmp_path / "ref", *argv[2:])[0] == 0
    a, b = Store(tmp_path / "db", create=False), Store(tmp_path / "ref", create=False)
    cols = ["id", "text", "source", "doc_hash", "hash"]
    rows_a = sorted(tuple(r[c] for c in cols) for r in a.chunks().to_arrow().to_pylist())
    rows_b = sorted(tuple(r[c] for c in cols) for r in b.chunks().to_arrow().to_pylist())
    assert rows_a == rows_b and len(rows_a) == 120  # same content, nothing duplicated
