"""Index, search and ask with an encoder-only registry model (a tiny BERT standing in for all-MiniLM-L6-v2)."""

import json
import warnings

import numpy as np
import pytest
import torch

from dec2vec import Embedder, InputError, TruncationWarning
from dec2vec.cli import main
from dec2vec.encoder_only import EncoderOnlyEmbedder
from dec2vec.errors import TruncationError
from dec2vec.search.chunking import ChunkSpec
from dec2vec.search.indexer import Index, chunk_capacity
from dec2vec.search.rag import ask
from dec2vec.text_embedders import load_text_embedder

from .encoder_registry import registered_encoder

ROWS = [
    "the cat sat on the mat . it was old .",
    "a dog runs on the road . it is quick .",
    "the sun and the moon and a star",
    "a small green tree by the river",
    "the old house in the big city",
]
LONG = " ".join(["the quick brown fox jumps over the lazy dog ."] * 10)  # over the tiny BERT's 64 positions


@pytest.fixture(scope="module")
def name(tiny_encoder):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with registered_encoder(tiny_encoder) as registered:
        yield registered
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def enc(name):
    return load_text_embedder(name, device="cpu")


def write_rows(path, texts):
    path.write_text("".join(json.dumps({"text": t, "title": f"t{i}"}) + "\n" for i, t in enumerate(texts)))
    return path


def test_the_encoder_has_the_index_and_server_surface(enc, name):
    assert isinstance(enc, EncoderOnlyEmbedder) and enc.config.recipe == "encoder-only" and enc.config.backbone == name
    plain = EncoderOnlyEmbedder.from_registry(name, device="cpu")
    np.testing.assert_allclose(enc.encode(ROWS), plain.encode(ROWS), atol=1e-6)  # embeds as published
    lays = enc.layouts(ROWS[:2])
    assert [len(lay.ids) for lay in lays] == [len(r) for r in enc.encoder.token_ids(ROWS[:2])]
    with pytest.warns(TruncationWarning, match="first: item 1"):
        assert len(enc.layouts(["a dog", LONG])[1].ids) == enc.max_length == 64
    with pytest.raises(TruncationError, match="item 1: .* exceed the model's limit 64"):
        enc.layouts(["a dog", LONG], truncate=False)
    with pytest.raises(InputError, match="takes no instruction"):
        enc.layouts(["a dog"], instruction="find animals")
    specials = len(enc.encoder.token_ids(["a"])[0]) - 1  # [CLS] and [SEP] for BERT; none for this tokenizer
    assert chunk_capacity(enc) == 64 - specials - 2  # and two spare
    assert enc.state_dict().keys() == enc.encoder.state_dict().keys()


def test_build_search_reopen_and_ask_extractively(enc, name, tiny_backbone, tmp_path):
    src = write_rows(tmp_path / "rows.jsonl", [*ROWS, LONG])
    index = Index(tmp_path / "db", enc, model_ref=name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)  # the long row is chunked to fit, never cut
        report = index.build([src], chunking=index.chunk_spec(size=20))
    assert report.indexed == 6 and report.truncated == 0 and len(index) > 6
    for row in ROWS:  # default instruction dropped: the encoder takes none
        top = index.search(row, k=2)[0]
        assert top.text == row and top.score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(InputError, match="encoder-only model and takes no instruction"):
        index.search("a cat", instruction="find animals")
    stats = index.stats()
    assert stats["model"]["recipe"] == "encoder-only" and stats["model"]["backbone"] == name
    again = Index.open(tmp_path / "db")  # loads the registry encoder by its stored reference
    assert isinstance(again.embedder, EncoderOnlyEmbedder) and again.search(ROWS[3], k=1)[0].text == ROWS[3]
    with pytest.raises(InputError, match="different: .*recipe"):
        Index(tmp_path / "db", Embedder.from_recipe("mean", tiny_backbone, device="cpu"))
    answer = ask(index, "where is the small green tree ?", k=20, min_relevance=0)  # random weights: all weak
    assert answer.mode == "extractive" and "encoder-only" in answer.reason and answer.prompt == ""
    n = answer.citations[0]
    assert answer.text.removesuffix(f" [{n}]") in answer.sources[n - 1].text
    with pytest.raises(InputError, match="encoder-only model: it has no language model"):
        ask(index, "where is the tree ?", mode="generate")
    cap = chunk_capacity(enc)
    with pytest.raises(InputError, match=f"at most {cap} with recipe 'encoder-only'"):
        index.build([src], chunking=ChunkSpec(cap + 1, 0))


def test_cli_index_search_ask_with_an_encoder(name, tmp_path, capsys):
    src = write_rows(tmp_path / "rows.jsonl", ROWS)
    db = tmp_path / "db"
    assert main(["index", "build", "--db", str(db), "--input", str(src), "--model", name, "-q"]) == 0
    assert "5 indexed" in capsys.readouterr().out
    assert main(["search", "--db", str(db), ROWS[3], "-k", "2", "--json"]) == 0  # the index's own model
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["text"] == ROWS[3] and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert main(["ask", "--db", str(db), "where is the tree ?", "-k", "5", "--json"]) == 0  # all: random weights
    answer = json.loads(capsys.readouterr().out)
    assert answer["mode"] == "extractive" and answer["citations"] and len(answer["sources"]) == 5
    assert main(["ask", "--db", str(db), "where is the tree ?", "--mode", "generate"]) == 2
    assert "encoder-only model" in capsys.readouterr().err
    assert main(["index", "info", "--db", str(db), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_ref"] == name and info["model"]["recipe"] == "encoder-only"
