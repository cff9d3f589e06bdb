"""Training-time masks: MNTP's token masking and labels, UniMAE's reconstruction visibility (no row sees
its own token), and the contrastive false-negative mask reaching the loss that is back-propagated."""

from __future__ import annotations

import pytest
import torch

from dec2vec import Embedder
from dec2vec.train import objectives
from dec2vec.train.config import DataSpec, StageConfig
from dec2vec.train.data import Record
from dec2vec.train.distributed import DistContext
from dec2vec.train.losses import IGNORE, info_nce
from dec2vec.train.mrc import ReconstructionDecoder
from dec2vec.train.objectives import mask_token_id, mask_tokens

from ..conftest import SENTENCES, make_tokenizer

MASK = 5  # an id no test input below contains, so "replaced by the mask token" is visible


# ---- mask_tokens -----------------------------------------------------------------------------------


def _ids_and_maskable(rows: int = 64, cols: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 400, (rows, cols), generator=gen)  # (B, T), never MASK
    maskable = torch.rand((rows, cols), generator=gen) < 0.6  # (B, T): the text tokens
    maskable[:, 0] = maskable[:, -1] = False  # BOS and EOS, say
    return ids, maskable


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.8])
def test_mask_tokens_masks_the_ratio_of_maskable_tokens_only(ratio):
    ids, maskable = _ids_and_maskable()
    corrupted, masked = mask_tokens(ids, maskable, ratio, MASK, torch.Generator().manual_seed(1))
    assert not (masked & ~maskable).any(), "a token outside the text (special, template, padding) was masked"
    share = masked.sum().item() / maskable.sum().item()  # ~11,500 maskable tokens: 4 sd is under 0.02
    assert abs(share - ratio) < 0.02, share
    # every masked token becomes the mask token (no BERT-style 80/10/10 split), every other one is kept
    assert (corrupted[masked] == MASK).all()
    assert torch.equal(corrupted[~masked], ids[~masked])
    assert torch.equal(ids, _ids_and_maskable()[0]), "the caller's ids were changed in place"


def test_mask_tokens_is_drawn_from_the_generator():
    ids, maskable = _ids_and_maskable(8, 50)
    a = mask_tokens(ids, maskable, 0.5, MASK, torch.Generator().manual_seed(3))[1]
    b = mask_tokens(ids, maskable, 0.5, MASK, torch.Generator().manual_seed(3))[1]
    c = mask_tokens(ids, maskable, 0.5, MASK, torch.Generator().manual_seed(4))[1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_mask_token_id_uses_the_tokenizers_mask_token_else_underscore():
    tok = make_tokenizer()
    assert tok.mask_token_id is None
    assert mask_token_id(tok) == tok("_", add_special_tokens=False)["input_ids"][0]
    tok.add_special_tokens({"mask_token": "<mask>"})
    assert mask_token_id(tok) == tok.mask_token_id == tok.convert_tokens_to_ids("<mask>")


def _stage(objective: str, **kw) -> StageConfig:
    return StageConfig(objective=objective, data=[DataSpec(path="x.jsonl")], **kw)


def test_mntp_step_labels_exactly_the_masked_text_tokens(tiny_backbone, monkeypatch, one_thread):
    """Labels are the clean id at masked text positions and IGNORE elsewhere; the model reads the
    corrupted ids; the loss is the cross-entropy of token i from the state at i-1, by hand."""
    emb = Embedder.from_recipe("llm2vec", tiny_backbone, device="cpu", dtype="float32")
    obj = objectives.MNTP(emb, _stage("mntp", mask_ratio=0.5), DistContext(), seed=0)
    seen: dict[str, torch.Tensor] = {}
    real_pairs, real_hidden = objectives.masked.next_token_pairs, emb.hidden_states

    def pairs_spy(hidden, labels):
        seen["hidden"], seen["labels"] = hidden.detach().clone(), labels.clone()
        return real_pairs(hidden, labels)

    def hidden_spy(feats):
        seen["input_ids"] = feats["input_ids"].clone()
        return real_hidden(feats)

    monkeypatch.setattr(objectives.masked, "next_token_pairs", pairs_spy)
    monkeypatch.setattr(emb, "hidden_states", hidden_spy)
    result = obj.step([Record(text=t) for t in SENTENCES], obj.stage.data[0], step=3)

    feats = emb.tokenize(SENTENCES)  # the same batch: texts of different lengths, right-padded
    ids, text = feats["input_ids"], feats["pool_mask"].bool()  # text: not EOS, not padding
    labels, corrupted = seen["labels"], seen["input_ids"]
    masked = labels != IGNORE
    mask_id = mask_token_id(emb.tokenizer)
    assert masked.any() and not (masked & ~text).any()
    assert torch.equal(labels[masked], ids[masked])
    assert (corrupted[masked] == mask_id).all() and torch.equal(corrupted[~masked], ids[~masked])
    # the loss, by hand: every masked token after the first position, from the state just before it
    logp = torch.log_softmax(emb.backbone.get_output_embeddings()(seen["hidden"]).float(), dim=-1)  # (B, T, V)
    terms = [-logp[b, i - 1, ids[b, i]] for b, i in masked.nonzero().tolist() if i > 0]
    assert result.loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    # the same step draws the same mask (resume), another step another one
    again = dict(seen)
    obj.step([Record(text=t) for t in SENTENCES], obj.stage.data[0], step=3)
    assert torch.equal(seen["labels"], again["labels"])
    obj.step([Record(text=t) for t in SENTENCES], obj.stage.data[0], step=4)
    assert not torch.equal(seen["labels"], again["labels"])


# ---- UniMAE's reconstruction decoder ---------------------------------------------------------------


def _decoder(d: int = 16, heads: int = 2) -> ReconstructionDecoder:
    dec = ReconstructionDecoder(d, heads, max_positions=32)
    dec.reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():  # larger weights than the N(0, 0.02) init, so that every input shows in the output
        gen = torch.Generator().manual_seed(1)
        for p in dec.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return dec.eval()


def test_visibility_never_own_token_always_h_eos_never_padding():
    dec = _decoder()
    valid = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])  # (B, N)
    N = valid.shape[1]
    key_ok = torch.cat([torch.ones(2, 1, dtype=torch.bool), valid.bool()], dim=1)  # (B, N+1): h_eos, then tokens
    for p in (1.0, 0.5, 0.0):
        allowed = dec.visibility(valid, p, torch.Generator().manual_seed(2))  # (B, N+1, N+1)
        assert allowed.shape == (2, N + 1, N + 1)
        rows = torch.arange(1, N + 1)
        assert not allowed[:, rows, rows].any(), "a reconstruction row sees its own token"
        assert allowed[:, :, 0].all(), "h_eos must stay visible to every row"
        assert not (allowed & ~key_ok[:, None, :]).any(), "a padding key is visible"
        if p == 1.0:  # everything else is visible
            expected = key_ok[:, None, :] & ~torch.eye(N + 1, dtype=torch.bool)
            expected[:, :, 0] = True
            assert torch.equal(allowed, expected)
        if p == 0.0:  # only h_eos
            assert allowed[:, :, 1:].sum() == 0


def test_visibility_hides_about_the_asked_share():
    dec = _decoder()
    valid = torch.ones(4, 60, dtype=torch.long)
    allowed = dec.visibility(valid, 0.3, torch.Generator().manual_seed(5))[:, 1:, 1:]  # token rows x token keys
    off_diag = ~torch.eye(60, dtype=torch.bool).expand(4, -1, -1)
    share = allowed[off_diag].float().mean().item()  # 14,160 coins
    assert abs(share - 0.3) < 0.03, share


@pytest.mark.parametrize("visible_prob", [1.0, 0.5])
def test_reconstruction_row_output_never_depends_on_its_own_token(visible_prob):
    """Changing token i's embedding changes no output of row i (the row that predicts x_i); at full
    visibility it changes every other row, and a padding token changes nothing."""
    dec = _decoder()
    gen = torch.Generator().manual_seed(0)
    B, N, d = 2, 5, 16
    h_eos, tokens = torch.randn(B, d, generator=gen), torch.randn(B, N, d, generator=gen)
    valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        base = dec(h_eos, tokens, valid, visible_prob, torch.Generator().manual_seed(9))  # (B, N, d)
        for i in range(N):
            bumped = tokens.clone()
            bumped[:, i] += 3.0 * torch.randn(B, d, generator=gen)
            out = dec(h_eos, bumped, valid, visible_prob, torch.Generator().manual_seed(9))
            change = (out - base).abs().amax(dim=-1)  # (B, N)
            assert change[:, i].max() < 1e-5, f"row {i} read its own token"
            if i >= 3:  # a padding token of text 1: invisible to its rows
                assert change[1].max() < 1e-5
            if visible_prob == 1.0:
                others = [j for j in range(N) if j != i]
                assert change[0, others].min() > 1e-3, "every other row sees token i at full visibility"


# ---- the false-negative mask reaches the loss --------------------------------------------------------


RECORDS = [
    Record(query="q1", positive="same answer"),
    Record(query="q2", positive="same answer"),  # equal positives: each is a false negative of the other
    Record(query="a gloss", positive="the dog barked", negatives=("a wild wolf",)),
    Record(query="a gloss", positive="he walked his dog"),  # one query asked twice: its examples answer both
]
DOCS = ["same answer", "same answer", "the dog barked", "he walked his dog", "a wild wolf"]
EXPECTED_MASK = [
    [False, True, False, False, False],
    [True, False, False, False, False],
    [False, False, False, True, False],
    [False, False, True, False, False],
]


def test_contrastive_step_backpropagates_the_masked_loss(tiny_backbone, monkeypatch, one_thread):
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="float32")
    obj = objectives.Contrastive(emb, _stage("contrastive", hard_negatives=1, temperature=0.05), DistContext(), 0)
    masks: list[torch.Tensor | None] = []
    real = objectives.contrastive.info_nce

    def spy(q, d, temperature, offset=0, mask=None):
        masks.append(mask)
        return real(q, d, temperature, offset, mask)

    monkeypatch.setattr(objectives.contrastive, "info_nce", spy)
    result = obj.step(RECORDS, obj.stage.data[0], step=0)
    assert len(masks) == 1 and masks[0] is not None and masks[0].tolist() == EXPECTED_MASK
    with torch.no_grad():  # the step computed gradients but changed no weight
        q = emb(emb.tokenize([r.query for r in RECORDS]))
        d = emb(emb.tokenize(DOCS))
    masked = info_nce(q, d, 0.05, 0, torch.tensor(EXPECTED_MASK)).item()
    assert result.loss.item() == pytest.approx(masked, rel=1e-5)
    assert abs(masked - info_nce(q, d, 0.05).item()) > 1e-3  # the mask matters for this batch


def test_distill_step_hands_the_mask_to_the_soft_infonce(tiny_backbone, tiny_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="float32")
    stage = _stage("distill", hard_negatives=1, teacher=str(tiny_encoder), distill_nce=1.0)
    obj = objectives.Distill(emb, stage, DistContext(), 0)
    masks: list[torch.Tensor] = []
    real = objectives.distill.soft_info_nce

    def spy(*args):
        masks.append(args[-1])
        return real(*args)

    monkeypatch.setattr(objectives.distill, "soft_info_nce", spy)
    obj.step(RECORDS, stage.data[0], step=0)
    assert len(masks) == 1 and masks[0].tolist() == EXPECTED_MASK
