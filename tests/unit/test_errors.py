"""Bad input gets one clear message that says what and where."""

import pytest

from dec2vec import Embedder, InputError, ModelNotFoundError, TruncationError, TruncationWarning, UnknownRecipeError


@pytest.fixture(scope="module")
def emb(tiny_backbone):
    return Embedder.from_recipe("mean", tiny_backbone, device="cpu", max_length=16)


@pytest.mark.parametrize(
    "texts,match",
    [
        ([], "empty"),
        (["ok text", "   "], "item 1: the text is empty or whitespace-only"),
        (["ok", ""], "item 1"),
        (["ok", 3], "item 1: expected a string, got int"),
        (["ok", None], "item 1: expected a string, got NoneType"),
        (42, "texts must be a string or a list"),
    ],
)
def test_bad_texts(emb, texts, match):
    with pytest.raises(InputError, match=match):
        emb.encode(texts)


def test_single_string_is_one_row(emb):
    assert emb.encode("the cat").shape == (1, emb.embedding_dim)


def test_long_text_truncates_with_warning_or_errors(emb):
    long = " ".join(["cat"] * 40)
    with pytest.warns(TruncationWarning, match="first: item 1"):
        out = emb.encode(["a dog", long])
    assert out.shape == (2, emb.embedding_dim)
    assert len(emb.tokenize([long])["input_ids"][0]) == 16
    with pytest.raises(TruncationError, match="item 1: .* exceed max_length 16") as e:
        emb.encode(["a dog", long], truncate=False)
    assert e.value.index == 1


def test_echo_truncation_keeps_both_copies(tiny_backbone):
    emb = Embedder.from_recipe("echo", tiny_backbone, device="cpu", max_length=48)
    long = " ".join(["cat"] * 40)
    with pytest.warns(TruncationWarning) as rec:
        f = emb.tokenize([long])
    assert rec[0].message.indices == [0]
    ids, pooled = f["input_ids"][0], f["pool_mask"][0].bool()
    assert len(ids) == 48 and int(pooled.sum()) >= 3
    kept = emb.tokenizer.decode(ids[pooled]).strip()
    assert long.startswith(kept)  # the end of the text was cut, in the pooled copy...
    assert emb.tokenizer.decode(ids).count(kept) == 2  # ...and identically in the first copy


def test_instruction_too_long_for_limit(emb):
    with pytest.raises(InputError, match="template and instruction alone"):
        emb.encode(["a dog"], instruction=" ".join(["cat"] * 30))


def test_unknown_recipe_and_missing_paths(tmp_path):
    with pytest.raises(UnknownRecipeError, match="unknown recipe 'nope'; known recipes: mean"):
        Embedder.from_recipe("nope")
    with pytest.raises(ModelNotFoundError, match="neither a saved dec2vec model folder nor a recipe"):
        Embedder.from_pretrained("nope")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        Embedder.from_recipe("mean", backbone=str(tmp_path / "missing"))
    with pytest.raises(ModelNotFoundError, match="is not a saved dec2vec model"):
        Embedder.from_pretrained(tmp_path)


def test_bad_recipe_option_fails_before_loading():
    with pytest.raises(Exception, match="unknown option"):
        Embedder.from_recipe("mean", backbone="/does/not/matter", num_latents=3)
    with pytest.raises(Exception, match="pooling must be one of"):
        Embedder.from_recipe("causal2vec", backbone="/does/not/matter", pooling="max")


def test_text_without_tokens(emb, monkeypatch):
    real = emb.tokenizer.__class__.__call__

    def no_tokens(self, texts, **kw):  # a tokenizer that drops everything (e.g. unknown script)
        out = real(self, texts, **kw)
        out["input_ids"] = [[] for _ in out["input_ids"]]
        if "offset_mapping" in out:
            out["offset_mapping"] = [[] for _ in out["offset_mapping"]]
        return out

    monkeypatch.setattr(emb.tokenizer.__class__, "__call__", no_tokens)
    with pytest.raises(InputError, match="item 0: the text has no tokens"):
        emb.layouts(["x"])


def test_light_encoder_limit(tiny_backbone, tmp_path):
    from ..conftest import save_tiny_encoder

    enc = save_tiny_encoder(tmp_path / "enc", max_seq_length=8)
    emb = Embedder.from_recipe("causal2vec", tiny_backbone, enc, device="cpu")
    assert emb.encoder.max_length == 8
    long = " ".join(["cat"] * 20)
    with pytest.warns(TruncationWarning):
        emb.encode(["a dog", long])
    with pytest.raises(TruncationError, match="item 1: .* light encoder's limit 8"):
        emb.encode(["a dog", long], truncate=False)
