import pytest
import torch

from dec2vec.engine import plan_batches
from dec2vec.inputs import Segment, TextTokenizer, build_layouts, collate
from dec2vec.pooling import LatentAttentionPooling, gather_positions, mean_pool

from ..conftest import make_tokenizer


def test_mean_pool_ignores_masked_positions():
    h = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    m = torch.tensor([[1, 1, 0], [0, 0, 1]])
    out = mean_pool(h, m)
    torch.testing.assert_close(out[0], h[0, :2].mean(0))
    torch.testing.assert_close(out[1], h[1, 2])
    h2 = h.clone()
    h2[0, 2] = 1e6  # a masked position must not leak in
    torch.testing.assert_close(mean_pool(h2, m), out)


def test_gather_positions():
    h = torch.randn(3, 5, 4)
    idx = torch.tensor([4, 0, 2])
    out = gather_positions(h, idx)
    for b in range(3):
        torch.testing.assert_close(out[b], h[b, idx[b]])


def test_latent_pooling_is_seeded_and_masked():
    def build(seed):
        layer = LatentAttentionPooling(16, num_latents=8, num_heads=4)
        layer.reset_parameters(torch.Generator().manual_seed(seed))
        return layer

    a, b, c = build(0), build(0), build(1)
    h, m = torch.randn(2, 5, 16), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    torch.testing.assert_close(a(h, m), b(h, m))
    assert not torch.allclose(a(h, m), c(h, m))
    h2 = h.clone()
    h2[0, 3:] = 100.0
    torch.testing.assert_close(a(h2, m)[0], a(h, m)[0])
    with pytest.raises(ValueError, match="divisible"):
        LatentAttentionPooling(10, num_heads=4)


@pytest.mark.parametrize("budget", [8, 20, 64, 1000])
def test_plan_batches_budget_and_coverage(budget):
    lengths = [3, 8, 1, 5, 5, 2, 7, 8, 4]
    batches = plan_batches(lengths, max_tokens=budget, max_batch_size=4)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 4
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # longest first: OOM shows at once


def test_layout_adds_bos_only_when_tokenizer_does():
    plain, with_bos = TextTokenizer(make_tokenizer()), TextTokenizer(make_tokenizer(bos=True))
    assert plain.bos_id is None and with_bos.bos_id == 1
    segs = [Segment("Query: "), Segment("the cat sat", pooled=True)]
    lay = build_layouts([segs], with_bos, contextual_token=True)[0]
    assert lay.ids[0] == 1 and lay.ctx_pos == 1 and lay.ids[-1] == with_bos.eos_id
    assert lay.pooled[:2] == (0, 0) and lay.pooled[-1] == 0  # BOS, ctx and EOS never pooled
    lay2 = build_layouts([segs], plain, contextual_token=False)[0]
    assert lay2.ctx_pos is None and lay2.ids[0] != 1


def test_segments_are_tokenized_jointly_and_pooled_by_offsets():
    """The model sees the tokens of the whole prompt; pooled tokens are exactly the text's."""
    tt = TextTokenizer(make_tokenizer())
    segs = [
        Segment("Rewrite the sentence: "),
        Segment("the cat sat"),
        Segment("\nRewritten: "),
        Segment("the cat sat", pooled=True),
    ]
    lay = build_layouts([segs], tt, contextual_token=False)[0]
    joint = tt.tok("".join(s.text for s in segs), add_special_tokens=False)["input_ids"]
    assert list(lay.ids[:-1]) == joint
    pooled_ids = [t for t, p in zip(lay.ids, lay.pooled, strict=True) if p]
    assert tt.tok.decode(pooled_ids).strip() == "the cat sat"
    assert sum(lay.pooled) < len(joint) // 2


def test_slow_tokenizer_refused():
    class Slow:
        is_fast = False

    with pytest.raises(Exception, match="fast"):
        TextTokenizer(Slow())


@pytest.mark.parametrize("side", ["left", "right"])
def test_collate_indices_follow_padding(side):
    tt = TextTokenizer(make_tokenizer())
    lays = build_layouts([[Segment("cat", pooled=True)], [Segment("cat dog sat on", pooled=True)]], tt, True)
    f = collate(lays, tt.pad_id, side)
    for b, lay in enumerate(lays):
        assert f["input_ids"][b, f["eos_index"][b]] == tt.eos_id
        assert f["attention_mask"][b].sum() == len(lay.ids)
        assert f["attention_mask"][b, f["ctx_index"][b]] == 1
    assert f["pool_mask"].sum().item() == sum(sum(lay.pooled) for lay in lays)


def test_mean_pool_does_not_leak_nan_from_padding():
    h = torch.randn(1, 3, 4)
    h[0, 2] = float("nan")
    assert torch.isfinite(mean_pool(h, torch.tensor([[1, 1, 0]]))).all()


def test_device_and_dtype_choice(monkeypatch):
    from dec2vec.device import default_max_tokens, pick_device, pick_dtype

    assert pick_device("cpu").type == "cpu"
    # the default, whatever this machine has: CUDA first, then MPS, then CPU; an explicit choice wins
    for cuda, mps, expected in [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda mps=mps: mps)
        assert pick_device().type == expected
        assert pick_device("cpu").type == "cpu"
    assert default_max_tokens(torch.device("cpu")) < default_max_tokens(torch.device("cuda"))
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert pick_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
