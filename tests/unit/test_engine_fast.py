"""The fast encode path computes the same function as the reference path, on every recipe.

Reference: ``Embedder.forward`` on one text at a time (no padding at all), the path training
uses. Fast: ``encode`` with length-sorted token-budget batches, background tokenization, no mask
on right-padded causal batches, and the packed (varlen) path. The varlen kernel itself needs
CUDA; here its reference loop runs, which checks the packing, positions and unpacking around it
(benchmarks/equivalence.py checks the kernel on a GPU).
"""

import numpy as np
import pytest
import torch

from dec2vec import Embedder, InputError, TruncationWarning, recipe_names
from dec2vec.engine import Prefetcher, chunked
from dec2vec.inputs import collate, pack_features

from ..conftest import SENTENCES
from .test_recipes import build

TEXTS = [*SENTENCES, "the cat", "a big old house on the road to the city and the river", "sun", "green tree ."] * 2


def reference(emb: Embedder, texts: list[str]) -> np.ndarray:
    with torch.inference_mode():
        rows = [torch.nn.functional.normalize(emb(emb.tokenize([t])).float(), dim=-1) for t in texts]
    return torch.cat(rows).numpy()


def min_cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


@pytest.fixture(scope="module", params=recipe_names())
def emb32(request, tiny_backbone, tiny_encoder):
    return build(request.param, tiny_backbone, tiny_encoder)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_fast_path_equals_reference_fp32(emb32, packed, one_thread):
    ref = reference(emb32, TEXTS)
    for budget in (24, 10_000):  # many small batches, and one large one with much padding
        assert min_cos(emb32.encode(TEXTS, max_tokens=budget, packed=packed), ref) >= 0.9999


@pytest.mark.parametrize("recipe", recipe_names())
def test_fast_path_equals_reference_bf16(recipe, tiny_backbone, tiny_encoder, one_thread):
    emb = build(recipe, tiny_backbone, tiny_encoder, dtype="bfloat16")
    ref = reference(emb, TEXTS)
    for packed in (False, True):
        assert min_cos(emb.encode(TEXTS, max_tokens=64, packed=packed), ref) >= 0.999


@pytest.mark.parametrize("arch", ["mistral", "qwen2", "gemma3"])
def test_packed_path_on_other_architectures(arch, tiny_backbones, one_thread):
    emb = Embedder.from_recipe("mean", tiny_backbones[arch], device="cpu", dtype="float32")
    ref = reference(emb, TEXTS)
    assert min_cos(emb.encode(TEXTS, packed=True), ref) >= 0.9999
    assert min_cos(emb.encode(TEXTS, packed=False), ref) >= 0.9999
    bi = Embedder.from_recipe("llm2vec", tiny_backbones[arch], device="cpu", dtype="float32")
    assert min_cos(bi.encode(TEXTS, packed=True), reference(bi, TEXTS)) >= 0.9999


def test_the_comparison_can_fail(tiny_backbone, one_thread):
    """Skipping the mask is only right for right padding: on left padding it must change the result."""
    emb = build("mean", tiny_backbone, None)
    feats = emb.tokenize(TEXTS, padding_side="left")
    with torch.inference_mode():
        right = torch.nn.functional.normalize(emb._embed_batch(feats, packed=False, right_padded=False), dim=-1)
        wrong = torch.nn.functional.normalize(emb._embed_batch(feats, packed=False, right_padded=True), dim=-1)
    assert min_cos(right.numpy(), reference(emb, TEXTS)) >= 0.9999
    assert min_cos(wrong.numpy(), reference(emb, TEXTS)) < 0.99
    # and packing with the text boundaries moved (texts see each other) changes it too
    feats = emb.tokenize(TEXTS)
    feats.update(pack_features(feats["attention_mask"]))
    feats["cu_seqlens"] = torch.tensor([0, int(feats["cu_seqlens"][-1])], dtype=torch.int32)
    with torch.inference_mode():
        merged = torch.nn.functional.normalize(emb._embed_batch(feats, packed=True, right_padded=True), dim=-1)
    assert min_cos(merged.numpy(), reference(emb, TEXTS)) < 0.99


def test_pack_features_map_real_tokens():
    from dec2vec.inputs import Layout

    lays = [Layout((5, 6, 7), (1, 1, 0), 2), Layout((8, 9), (1, 0), 1), Layout((4,), (0,), 0)]
    feats = collate(lays, pad_id=0)
    packed = pack_features(feats["attention_mask"])
    assert packed["cu_seqlens"].tolist() == [0, 3, 5, 6] and packed["cu_seqlens"].dtype == torch.int32
    assert packed["pack_index"].tolist() == [0, 1, 2, 3, 4, 6]  # T=3: row 1 starts at 3, row 2 at 6
    assert packed["pack_positions"].tolist() == [0, 1, 2, 0, 1, 0]
    assert feats["input_ids"].view(-1)[packed["pack_index"]].tolist() == [5, 6, 7, 8, 9, 4]
    with pytest.raises(ValueError, match="right padding"):
        pack_features(collate(lays, pad_id=0, padding_side="left")["attention_mask"])


def test_packed_needs_right_padding(tiny_backbone):
    emb = build("mean", tiny_backbone, None)
    with pytest.raises(Exception, match="padding_side='right'"):
        emb.encode(TEXTS, packed=True, padding_side="left")


def test_encode_iter_streams_in_order(tiny_backbone, tiny_encoder, one_thread):
    emb = build("causal2vec", tiny_backbone, tiny_encoder)
    whole = emb.encode(TEXTS)
    blocks = list(emb.encode_iter(iter(TEXTS), chunk_size=4))  # a generator: read lazily
    assert [len(b) for b in blocks] == [4, 4, 4, 4, 2]
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)


def test_encode_iter_errors_and_warnings_name_stream_items(tiny_backbone):
    emb = build("mean", tiny_backbone, None)
    texts = [*TEXTS[:5], "  ", *TEXTS[5:]]
    with pytest.raises(InputError, match="item 5: the text is empty") as e:
        list(emb.encode_iter(texts, chunk_size=2))
    assert e.value.index == 5
    long = "the cat sat on the mat " * 200  # far over the tiny model's 512 positions
    with pytest.warns(TruncationWarning) as caught:
        list(emb.encode_iter([*TEXTS[:6], long], chunk_size=3))
    assert [w.message.indices for w in caught if isinstance(w.message, TruncationWarning)] == [[6]]


def test_prefetcher_keeps_order_and_raises_producer_errors():
    assert list(Prefetcher(iter(range(100)), depth=2)) == list(range(100))

    def broken():
        yield 1
        raise InputError("bad item 2")

    got = []
    with pytest.raises(InputError, match="bad item 2"):
        for x in Prefetcher(broken()):
            got.append(x)
    assert got == [1]


def test_prefetcher_stops_its_producer_when_the_consumer_stops():
    made = []

    def endless():
        i = 0
        while True:
            made.append(i)
            yield i
            i += 1

    pf = Prefetcher(endless(), depth=2)
    for x in pf:
        if x == 3:
            break
    pf.close()
    n = len(made)
    import time

    time.sleep(0.3)
    assert len(made) == n and n <= 3 + 2 + 2  # consumed, queued, one in hand


def test_chunked():
    assert list(chunked(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError):
        list(chunked([1], 0))


def test_compiled_decoder_equals_eager(tiny_backbone, one_thread):
    """``compile`` wraps the decoder (dynamo-traced; the eager backend keeps this test fast)."""
    emb = build("last-token", tiny_backbone, None)
    eager = emb.encode(TEXTS)
    emb.compile(backend="eager")
    assert min_cos(emb.encode(TEXTS, max_tokens=24), eager) >= 0.9999
    assert not any("_compiled" in k for k in emb.state_dict())


def test_encode_warns_once_across_blocks(tiny_backbone, one_thread):
    """encode works in blocks of ENCODE_CHUNK texts, but a call still gets one warning naming every cut text."""
    from dec2vec.engine import ENCODE_CHUNK

    emb = build("mean", tiny_backbone, None)
    long = "the cat sat on the mat " * 200
    texts = ["a dog"] * (ENCODE_CHUNK + 10)
    texts[5] = texts[ENCODE_CHUNK + 3] = long
    with pytest.warns(TruncationWarning) as caught:
        out = emb.encode(texts)
    cuts = [w.message.indices for w in caught if isinstance(w.message, TruncationWarning)]
    assert cuts == [[5, ENCODE_CHUNK + 3]]
    np.testing.assert_allclose(out[0], out[ENCODE_CHUNK + 9], atol=1e-6)  # same text, different blocks
