"""The text pipeline tokenizes each text once; what it pads equals tokenizing each batch afresh.

And the engine's producer hands over typed work items that cover every text of a block exactly
once, with truncated texts named by their index in the whole stream.
"""

import warnings
from collections import Counter

import pytest
import torch

from dec2vec import Embedder, TruncationWarning, recipe_names
from dec2vec.engine import Batch, BlockEnd, EncodeOptions, plan_work
from dec2vec.inputs import Layout
from dec2vec.loading import _load_encoder

from ..conftest import SENTENCES, make_tokenizer, save_tiny_backbone, save_tiny_encoder

LONG = " ".join(["cat"] * 20)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_light_encoder_ids_padded_equal_the_tokenizer_on_the_batch(tiny_encoder, padding_side):
    enc = _load_encoder(str(tiny_encoder), torch.float32, 6, "mean")
    enc.tokenizer = make_tokenizer(bos=True)  # adds a special token, which truncation must keep
    enc.tokenizer.padding_side = padding_side
    texts = [*SENTENCES, LONG]
    rows, long = enc.cut_once(texts)
    assert long == [i for i, row in enumerate(enc.token_ids(texts)) if len(row) > enc.max_length]
    assert long and len(long) < len(texts)  # some cut, some not
    assert rows == enc.cut_ids(texts)
    got, want = enc.pad(rows), enc.tokenize(texts)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_pipeline_features_equal_tokenizing_again(tiny_backbone, tmp_path):
    emb = Embedder.from_recipe("causal2vec", tiny_backbone, save_tiny_encoder(tmp_path / "enc", 8), device="cpu")
    texts = [*SENTENCES, LONG]
    prepared = emb.pipeline.prepare(texts)
    over = [i for i, t in enumerate(texts) if len(emb.encoder.tokenizer(t)["input_ids"]) > 8]
    assert prepared.truncated == over and len(texts) - 1 in over and 0 not in over  # the light encoder's limit
    feats = emb.pipeline.features(prepared, [4, 0, 5])
    want = emb.encoder.tokenize([texts[4], texts[0], texts[5]])
    for key in want:
        assert torch.equal(feats[key], want[key]), key


def test_work_items_cover_each_block_once(tiny_backbone):
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="float32")
    emb.max_length = 12
    texts = [*SENTENCES, LONG, "a dog", LONG]  # 8 texts: blocks of 3, 3, 2
    opts = EncodeOptions(chunk_size=3)
    items = list(plan_work(texts, emb.pipeline, opts, budget=24, pin=False))
    assert all(isinstance(item, (Batch, BlockEnd)) for item in items)
    ends = [item for item in items if isinstance(item, BlockEnd)]
    assert [end.size for end in ends] == [3, 3, 2]
    cut = [i for i, t in enumerate(texts) if emb.pipeline.prepare([t]).truncated]
    assert {5, 7} <= set(cut) and 6 not in cut
    assert [i for end in ends for i in end.truncated] == cut  # indices in the stream, not the block
    block: list[int] = []
    for item in items:
        if isinstance(item, Batch):
            assert item.features["input_ids"].shape[0] == len(item.rows)
            assert item.features["input_ids"].numel() <= 24  # the token budget
            block.extend(item.rows)
        else:
            assert sorted(block) == list(range(item.size))
            block = []


def count_calls(tokenizer, counts: Counter) -> None:
    """Make ``tokenizer`` count, per string, how often it is asked to tokenize it."""

    class Counting(type(tokenizer)):
        def __call__(self, text, *args, **kwargs):
            counts.update([text] if isinstance(text, str) else text)
            return super().__call__(text, *args, **kwargs)

    tokenizer.__class__ = Counting


@pytest.mark.parametrize("recipe", ["mean", "causal2vec"])
def test_encode_tokenizes_each_text_once_per_tokenizer(recipe, tiny_backbone, tmp_path, one_thread):
    """Cut texts included: the light encoder's cut comes from the same pass as its count, and the
    backbone cuts a text at the token boundaries of its first pass; only the cut text (a new,
    shorter string) is tokenized again, to see how it merges with the template's end."""
    encoder = save_tiny_encoder(tmp_path / "enc", 8) if recipe == "causal2vec" else None
    emb = Embedder.from_recipe(recipe, tiny_backbone, encoder, device="cpu", dtype="float32")
    emb.max_length = 16
    texts = [*SENTENCES, LONG, "a dog ran"]
    backbone, light = Counter(), Counter()
    count_calls(emb.pipeline.tokenizer.tok, backbone)
    if emb.encoder is not None:
        count_calls(emb.encoder.tokenizer, light)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emb.encode(texts, max_tokens=64)
    cut = [i for w in caught if isinstance(w.message, TruncationWarning) for i in w.message.indices]
    assert {2, 5} <= set(cut) and 6 not in cut
    assert all(backbone[t] == 1 for t in texts)  # mean and causal2vec: the backbone's input is the text
    for again in backbone - Counter(texts):
        assert any(texts[i].startswith(again) and again != texts[i] for i in cut)
    assert light == (Counter(texts) if encoder else Counter())


def reference_features(layouts: list[Layout], pad_id: int, side: str) -> dict[str, torch.Tensor]:
    """Padding written as a plain loop over texts and tokens, as the pipeline did before it went numpy."""
    B, T = len(layouts), max(len(lay.ids) for lay in layouts)
    out = {k: torch.zeros(B, T, dtype=torch.int64) for k in ("input_ids", "attention_mask", "pool_mask")}
    out["input_ids"].fill_(pad_id)
    out["eos_index"], out["ctx_index"] = torch.zeros(B, dtype=torch.int64), torch.zeros(B, dtype=torch.int64)
    for b, lay in enumerate(layouts):
        off = T - len(lay.ids) if side == "left" else 0
        for t, (token, pooled) in enumerate(zip(lay.ids, lay.pooled, strict=True)):
            out["input_ids"][b, off + t], out["attention_mask"][b, off + t] = token, 1
            out["pool_mask"][b, off + t] = pooled
        out["eos_index"][b] = off + lay.eos_pos
        out["ctx_index"][b] = off + (lay.ctx_pos or 0)
    if layouts[0].ctx_pos is None:
        del out["ctx_index"]
    return out


@pytest.fixture(scope="module")
def with_bos(tmp_path_factory):
    return save_tiny_backbone(tmp_path_factory.mktemp("tiny-bos"), bos=True)


@pytest.mark.parametrize("recipe", recipe_names())
@pytest.mark.parametrize("side", ["right", "left"])
def test_batches_equal_each_text_prepared_alone(recipe, side, with_bos, tiny_encoder):
    """Rows of a block (some cut by the backbone, some by the light encoder), batched in any order,
    pad to what each text gives alone, and pooled flags are the tokens that overlap the text."""
    emb = Embedder.from_recipe(recipe, with_bos, tiny_encoder if recipe == "causal2vec" else None, device="cpu")
    texts = [*SENTENCES, LONG + " dog", "a dog", LONG]
    for instruction in (None, "find animals"):
        emb.max_length = 4096
        emb.max_length = len(emb.layouts(["a"], instruction)[0].ids) + 12 * emb.recipe.text_copies
        prepared = emb.pipeline.prepare(texts, instruction)
        assert {5, 7} <= set(prepared.truncated)
        alone = [emb.pipeline.prepare([t], instruction) for t in texts]
        assert prepared.layouts == [p.layouts[0] for p in alone]
        rows = [7, 1, 5, 0, 6]
        got = emb.pipeline.features(prepared, rows, side)
        want = reference_features([prepared.layouts[i] for i in rows], emb.pipeline.tokenizer.pad_id, side)
        if emb.encoder is not None:
            want.update(emb.encoder.tokenize([texts[i] for i in rows]))
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(got[key], want[key]), key
        tok = emb.pipeline.tokenizer.tok
        for i, lay in enumerate(prepared.layouts):  # pooled flags: the tokens whose characters overlap the text
            pooled = tok.decode([t for t, p in zip(lay.ids, lay.pooled, strict=True) if p]).strip()
            assert texts[i].startswith(pooled) and (pooled == texts[i] or i in prepared.truncated)
