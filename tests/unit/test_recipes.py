"""Every recipe in one table: shape, finiteness, determinism, padding invariance, save/load, ST load."""

import numpy as np
import pytest
import torch

from dec2vec import Embedder, TruncationWarning, get_recipe, recipe_names
from dec2vec.device import inference_dtype
from dec2vec.recipes.base import RecipeOptions

from ..conftest import SENTENCES

SMALL_OPTIONS = {
    "nv-embed": {"num_latents": 16, "num_heads": 4},
    "icl": {"examples": [["a dog runs", "the dog ran"], ["blue sky", "the sky is blue"]]},
}


def build(recipe, backbone, encoder, dtype="float32", **kw):
    return Embedder.from_recipe(
        recipe, backbone, encoder, device="cpu", dtype=dtype, **{**SMALL_OPTIONS.get(recipe, {}), **kw}
    )


@pytest.fixture(scope="module", params=recipe_names())
def embedder(request, tiny_backbone, tiny_encoder):
    return build(request.param, tiny_backbone, tiny_encoder)


def cos_rows(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_all_methods_registered():
    assert recipe_names() == ["mean", "last-token", "echo", "icl", "llm2vec", "unimae", "causal2vec", "nv-embed"]


def test_shape_finite_dim(embedder):
    out = embedder.encode(SENTENCES)
    assert out.shape == (len(SENTENCES), embedder.embedding_dim) and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    d = embedder.hidden_size
    assert embedder.embedding_dim == (2 * d if embedder.config.recipe == "causal2vec" else d)


def test_deterministic_across_builds(embedder, tiny_backbone, tiny_encoder):
    again = build(embedder.config.recipe, tiny_backbone, tiny_encoder)
    np.testing.assert_array_equal(embedder.encode(SENTENCES), again.encode(SENTENCES))


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_and_batch_invariance(embedder, side):
    batch = embedder.encode(SENTENCES, padding_side=side, max_tokens=10_000)
    alone = np.stack([embedder.encode([s])[0] for s in SENTENCES])
    assert cos_rows(batch, alone).min() >= 0.9999
    tiny_batches = embedder.encode(SENTENCES, padding_side=side, max_tokens=1)  # one text per batch
    assert cos_rows(tiny_batches, alone).min() >= 0.9999


def test_output_order_is_input_order(embedder):
    fwd = embedder.encode(SENTENCES)
    rev = embedder.encode(SENTENCES[::-1])
    assert cos_rows(fwd, rev[::-1]).min() >= 0.9999


def test_save_load_identical(embedder, tmp_path):
    embedder.save_pretrained(tmp_path / "m")
    # in the dtype it was built in ("auto": float32 on CPU); with none asked, the inference default applies
    loaded = Embedder.from_pretrained(tmp_path / "m", device="cpu", dtype=embedder.config.dtype)
    assert loaded.config.to_dict() == embedder.config.to_dict()
    np.testing.assert_array_equal(loaded.encode(SENTENCES), embedder.encode(SENTENCES))
    default = Embedder.from_pretrained(tmp_path / "m", device="cpu")
    assert str(default.dtype) == f"torch.{inference_dtype(None, None, 'cpu') or 'float32'}"
    assert not list((tmp_path / "m").rglob("*.bin")) and not list((tmp_path / "m").rglob("*.pt"))  # no pickle


def test_sentence_transformers_load(embedder, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    embedder.save_pretrained(tmp_path / "m")
    model = st.SentenceTransformer(str(tmp_path / "m"), trust_remote_code=True, device="cpu")
    api = Embedder.from_pretrained(tmp_path / "m", device="cpu")  # the same default dtype as sentence-transformers'
    ours = api.encode(SENTENCES)
    theirs = model.encode(SENTENCES, convert_to_numpy=True)
    assert theirs.shape == ours.shape
    # the same vectors, not only the same directions: unit length, as encode gives (issue 18)
    np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    assert model.get_embedding_dimension() == embedder.embedding_dim
    q_ours = api.encode(SENTENCES[:2], instruction="find the animal")
    q_theirs = model.encode(SENTENCES[:2], prompt="find the animal")
    np.testing.assert_allclose(q_theirs, q_ours, atol=1e-5)


def test_instruction_changes_input_but_is_never_mean_pooled(embedder):
    feats = embedder.tokenize(SENTENCES[:2], instruction="find the animal")
    plain = embedder.tokenize(SENTENCES[:2])
    assert feats["input_ids"].shape != plain["input_ids"].shape  # the instruction is in the input
    # the pooled positions hold exactly the text's tokens (once), whatever the instruction
    tok = embedder.tokenizer
    for f in (feats, plain):
        for b, text in enumerate(SENTENCES[:2]):
            assert tok.decode(f["input_ids"][b][f["pool_mask"][b].bool()]).strip() == text
    a = embedder.encode(SENTENCES[:2], instruction="find the animal")
    assert not np.allclose(a, embedder.encode(SENTENCES[:2]))


def test_options_validated():
    for name in recipe_names():
        cls = get_recipe(name)
        assert issubclass(cls.Options, RecipeOptions)
        with pytest.raises(Exception, match="unknown option"):
            cls.Options.from_dict({"no_such_option": 1})


def test_seed_changes_untrained_heads(tiny_backbone, tiny_encoder):
    a = build("causal2vec", tiny_backbone, tiny_encoder, seed=0).encode(SENTENCES)
    b = build("causal2vec", tiny_backbone, tiny_encoder, seed=1).encode(SENTENCES)
    assert not np.allclose(a, b)


def test_causal2vec_contextual_token_reaches_the_llm(tiny_backbone, tiny_encoder):
    """Changing only the projector (so only the Contextual token) changes h_eos: the LLM sees it."""
    emb = build("causal2vec", tiny_backbone, tiny_encoder, pooling="eos")
    before = emb.encode(SENTENCES[:2])
    with torch.no_grad():
        emb.heads["projector"].net[-1].bias.add_(0.5)
    assert not np.allclose(before, emb.encode(SENTENCES[:2]))


@pytest.mark.parametrize("pooling,dim_factor", [("concat", 2), ("eos", 1), ("ctx", 1)])
def test_causal2vec_pooling_variants(tiny_backbone, tiny_encoder, pooling, dim_factor):
    emb = build("causal2vec", tiny_backbone, tiny_encoder, pooling=pooling)
    assert emb.encode(SENTENCES[:2]).shape == (2, dim_factor * emb.hidden_size)


def test_echo_doubles_and_icl_lengthens(tiny_backbone, tiny_encoder):
    lens = {
        r: build(r, tiny_backbone, tiny_encoder).tokenize(SENTENCES[:1])["attention_mask"].sum().item()
        for r in ("mean", "echo", "icl", "causal2vec")
    }
    assert lens["echo"] > 2 * (lens["mean"] - 1)
    assert lens["icl"] > 2 * lens["echo"]
    # the tiny tokenizer adds no BOS: causal2vec puts BOS and then the Contextual token first
    assert lens["causal2vec"] == lens["mean"] + 2
    no_bos = build("causal2vec", tiny_backbone, tiny_encoder, bos_first=False)
    assert no_bos.tokenize(SENTENCES[:1])["attention_mask"].sum().item() == lens["mean"] + 1


def test_causal2vec_contextual_token_is_never_the_first_position(tiny_backbone, tiny_encoder):
    """Position 0 of a causal LM is an attention sink: BOS goes there even if the tokenizer adds none."""
    emb = build("causal2vec", tiny_backbone, tiny_encoder)
    f = emb.tokenize(["a dog runs"])
    assert f["input_ids"][0, 0].item() == emb.tokenizer.bos_token_id and f["ctx_index"][0].item() == 1
    assert (
        build("causal2vec", tiny_backbone, tiny_encoder, bos_first=False)
        .tokenize(["a dog runs"])["ctx_index"][0]
        .item()
        == 0
    )
    # other recipes keep the tokenizer's own choice
    assert build("mean", tiny_backbone, tiny_encoder).tokenize(["a dog runs"])["input_ids"][0, 0].item() != (
        emb.tokenizer.bos_token_id
    )


def test_format_1_causal2vec_folder_loads_as_it_was_trained(tmp_path, tiny_backbone, tiny_encoder):
    """A folder saved before bos_first existed had the Contextual token first; it must still load so."""
    import json

    emb = build("causal2vec", tiny_backbone, tiny_encoder, bos_first=False)
    emb.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "dec2vec.json").read_text())
    del cfg["recipe_options"]["bos_first"]
    cfg["format_version"] = 1
    (tmp_path / "m" / "dec2vec.json").write_text(json.dumps(cfg))
    old = Embedder.from_pretrained(tmp_path / "m", device="cpu", dtype="auto")  # as emb was built
    assert old.recipe.options.bos_first is False
    np.testing.assert_array_equal(old.encode(SENTENCES[:2]), emb.encode(SENTENCES[:2]))
    cfg["format_version"] = 2  # the same file in today's format means today's default
    (tmp_path / "m" / "dec2vec.json").write_text(json.dumps(cfg))
    assert Embedder.from_pretrained(tmp_path / "m", device="cpu").recipe.options.bos_first is True


def test_bos_kept_first_with_contextual_token(tmp_path, tiny_encoder):
    from ..conftest import save_tiny_backbone

    folder = save_tiny_backbone(tmp_path / "bos", bos=True)
    emb = build("causal2vec", folder, tiny_encoder)
    f = emb.tokenize(["a dog runs"])
    assert f["input_ids"][0, 0].item() == emb.tokenizer.bos_token_id
    assert f["ctx_index"][0].item() == 1


@pytest.mark.parametrize("arch", ["mistral", "qwen2", "gemma3"])
@pytest.mark.parametrize("recipe", ["llm2vec", "causal2vec", "nv-embed", "echo"])
def test_recipes_on_other_architectures(tiny_backbones, tiny_encoder, arch, recipe):
    emb = build(recipe, tiny_backbones[arch], tiny_encoder)
    batch = emb.encode(SENTENCES, padding_side="left")
    alone = np.stack([emb.encode([s])[0] for s in SENTENCES])
    assert np.isfinite(batch).all() and cos_rows(batch, alone).min() >= 0.9999


def test_bfloat16_close_to_float32(tiny_backbone, tiny_encoder):
    fp32 = build("causal2vec", tiny_backbone, tiny_encoder).encode(SENTENCES)
    bf16 = build("causal2vec", tiny_backbone, tiny_encoder, dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    out = bf16.encode(SENTENCES)
    assert out.dtype == np.float32 and cos_rows(out, fp32).min() > 0.99


def test_progress_bar_for_large_inputs(embedder, capsys):
    embedder.encode(SENTENCES * 3, show_progress=True)
    assert "encode" in capsys.readouterr().err


def test_bidirectional_wiring_through_embedder(tiny_backbone):
    """llm2vec and mean differ only in attention: their embeddings must differ, and llm2vec's
    first-token state must depend on the last token."""
    a = build("mean", tiny_backbone, None).encode(SENTENCES)
    b = build("llm2vec", tiny_backbone, None).encode(SENTENCES)
    assert cos_rows(a, b).max() < 0.9999
    emb = build("llm2vec", tiny_backbone, None)
    f1, f2 = emb.tokenize(["the cat sat"]), emb.tokenize(["the cat ran"])
    assert f1["input_ids"].shape == f2["input_ids"].shape
    with torch.no_grad():
        from dec2vec.attention import run_decoder

        h = [
            run_decoder(
                emb.backbone,
                emb.backbone.get_input_embeddings()(f["input_ids"]),
                f["attention_mask"],
                bidirectional=True,
            )[0, 0]
            for f in (f1, f2)
        ]
    assert not torch.allclose(h[0], h[1])


def test_encoder_native_pooling_and_limit_survive_save(tiny_backbone, tmp_path):
    from ..conftest import save_tiny_encoder

    enc = save_tiny_encoder(tmp_path / "enc", max_seq_length=8, cls_pooling=True)
    emb = build("causal2vec", tiny_backbone, enc)
    assert emb.encoder.pooling == "cls" and emb.encoder.max_length == 8
    texts = [*SENTENCES, " ".join(["cat"] * 20)]  # one text over the encoder's limit
    with pytest.warns(TruncationWarning):
        ref = emb.encode(texts)
    emb.save_pretrained(tmp_path / "m")
    loaded = Embedder.from_pretrained(tmp_path / "m", device="cpu", dtype="auto")  # as emb was built
    assert loaded.encoder.pooling == "cls" and loaded.encoder.max_length == 8
    with pytest.warns(TruncationWarning):
        np.testing.assert_array_equal(loaded.encode(texts), ref)


def test_sentence_transformers_save_reload_and_max_seq_length(tiny_backbone, tiny_encoder, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    emb = build("causal2vec", tiny_backbone, tiny_encoder)
    emb.save_pretrained(tmp_path / "m")
    model = st.SentenceTransformer(str(tmp_path / "m"), trust_remote_code=True, device="cpu")
    model.max_seq_length = 12
    assert model.max_seq_length == 12
    model.max_seq_length = 512
    model.save(str(tmp_path / "again"))
    again = st.SentenceTransformer(str(tmp_path / "again"), trust_remote_code=True, device="cpu")
    assert cos_rows(again.encode(SENTENCES), emb.encode(SENTENCES)).min() >= 0.9999


def test_saved_folder_is_readable_and_replaced_atomically(tiny_backbone, tmp_path):
    emb = build("mean", tiny_backbone, None)
    emb.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m").stat().st_mode & 0o755 == 0o755
    emb.save_pretrained(tmp_path / "m")  # over an existing folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp or .old folders left
