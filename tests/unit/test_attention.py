"""Bidirectional attention really on, causal really off, on four architectures."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from dec2vec.attention import bidirectional_mask, position_ids_from_mask, run_decoder

ARCHS = ["llama", "mistral", "qwen2", "gemma3"]


def _states(model, ids, mask, bidirectional):
    with torch.no_grad():
        x = model.get_input_embeddings()(ids)
        return run_decoder(model, x, mask, bidirectional=bidirectional)


@pytest.mark.parametrize("arch", ARCHS)
def test_bidirectional_on_and_causal_off(tiny_backbones, arch):
    model = AutoModelForCausalLM.from_pretrained(tiny_backbones[arch], attn_implementation="sdpa").eval()
    ids = torch.tensor([[10, 11, 12, 13, 14, 15, 16, 17]])
    mask = torch.ones_like(ids)
    j = 6
    changed = ids.clone()
    changed[0, j] = 30
    for bidir in (True, False):
        a = _states(model, ids, mask, bidir)
        b = _states(model, changed, mask, bidir)
        before_j = (a[0, :j] - b[0, :j]).abs().amax(dim=-1)  # (j,)
        if bidir:
            assert before_j.max() > 1e-4, f"{arch}: bidirectional, yet h_i for i<j ignores token j"
        else:
            assert before_j.max() == 0, f"{arch}: causal, yet h_i for i<j depends on token j"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padding_is_invisible(tiny_backbones, arch, bidirectional):
    """Left or right padding, and what the pad ids are, never change real tokens' states."""
    model = AutoModelForCausalLM.from_pretrained(tiny_backbones[arch], attn_implementation="sdpa").eval()
    ids = torch.tensor([[10, 11, 12, 13, 14]])
    alone = _states(model, ids, torch.ones_like(ids), bidirectional)[0]  # (5, d)
    for pad_id in (3, 40):
        right = torch.cat([ids, torch.full((1, 3), pad_id)], dim=1)
        left = torch.cat([torch.full((1, 3), pad_id), ids], dim=1)
        m_right = torch.tensor([[1] * 5 + [0] * 3])
        m_left = torch.tensor([[0] * 3 + [1] * 5])
        r = _states(model, right, m_right, bidirectional)[0, :5]
        l_ = _states(model, left, m_left, bidirectional)[0, 3:]
        torch.testing.assert_close(r, alone, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(l_, alone, atol=1e-5, rtol=1e-4)


def test_mask_and_positions():
    m = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0]])
    four = bidirectional_mask(m, torch.float32)
    assert four.shape == (2, 1, 5, 5)
    assert (four[0, 0, :, :2] < -1e30).all() and (four[0, 0, :, 2:] == 0).all()
    assert position_ids_from_mask(m).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 2, 2]]
