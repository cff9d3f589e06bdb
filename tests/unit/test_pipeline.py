"""The text pipeline tokenizes each text once; what it pads equals tokenizing each batch afresh.

And the engine's producer hands over typed work items that cover every text of a block exactly
once, with truncated texts named by their index in the whole stream.
"""

import pytest
import torch

from dec2vec import Embedder
from dec2vec.engine import Batch, BlockEnd, EncodeOptions, plan_work
from dec2vec.loading import _load_encoder

from ..conftest import SENTENCES, make_tokenizer, save_tiny_encoder

LONG = " ".join(["cat"] * 20)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_light_encoder_ids_padded_equal_the_tokenizer_on_the_batch(tiny_encoder, padding_side):
    enc = _load_encoder(str(tiny_encoder), torch.float32, 6, "mean")
    enc.tokenizer = make_tokenizer(bos=True)  # adds a special token, which truncation must keep
    enc.tokenizer.padding_side = padding_side
    texts = [*SENTENCES, LONG]
    rows = enc.token_ids(texts)
    long = [i for i, row in enumerate(rows) if len(row) > enc.max_length]
    assert long and len(long) < len(texts)  # some cut, some not
    for i, row in zip(long, enc.cut_ids([texts[i] for i in long]), strict=True):
        rows[i] = row
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
