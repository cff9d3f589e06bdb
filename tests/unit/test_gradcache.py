"""Gradient caching gives the full-batch loss and gradients, chunk by chunk.

``cached_backward`` embeds every chunk without a graph, backpropagates the loss to the cached
embeddings, then re-embeds each chunk with a graph and pushes the cached embedding gradient
through it. On a real (tiny) Embedder this must equal one plain forward/backward over the whole
batch, for any chunking, under LoRA, with dropout (whose masks must be replayed), and through
the trainer.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from dec2vec.attention import set_attention_dropout
from dec2vec.embedder import Embedder
from dec2vec.train import gradcache
from dec2vec.train.gradcache import cached_backward
from dec2vec.train.losses import info_nce
from tests.conftest import WORDS

CPU = torch.device("cpu")
TEMPERATURE = 0.05
INSTRUCTION = "Query"
CONTENT = WORDS[:40]


pytestmark = pytest.mark.usefixtures("one_thread")


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(CONTENT) for _ in range(n))


def _batch(n: int = 16, seed: int = 0) -> tuple[list[str], list[str]]:
    """n queries; n positives then n hard negatives (lengths vary, so chunks pad differently)."""
    rng = random.Random(seed)
    queries = [_sentence(rng, rng.randint(2, 7)) for _ in range(n)]
    positives = [_sentence(rng, rng.randint(3, 9)) for _ in range(n)]
    negatives = [_sentence(rng, rng.randint(3, 9)) for _ in range(n)]
    return queries, positives + negatives


def _embedder(recipe: str, backbone: Path, encoder: Path, *, dropout: bool = False) -> Embedder:
    torch.manual_seed(0)
    kwargs = {"encoder": str(encoder)} if recipe == "causal2vec" else {}
    emb = Embedder.from_recipe(recipe, backbone, device="cpu", dtype="float32", **kwargs)
    if not dropout:
        for m in emb.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        set_attention_dropout(emb.backbone, 0.0)
    emb.train()
    return emb


def _grads(emb: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {n: (None if p.grad is None else p.grad.clone()) for n, p in emb.named_parameters() if p.requires_grad}


def _chunks(emb: Embedder, queries: list[str], docs: list[str], size: int) -> list[list[dict[str, torch.Tensor]]]:
    return [
        [emb.tokenize(queries[i : i + size], INSTRUCTION) for i in range(0, len(queries), size)],
        [emb.tokenize(docs[i : i + size]) for i in range(0, len(docs), size)],
    ]


def _loss(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return info_nce(q, d, TEMPERATURE)


def _plain(emb: Embedder, queries: list[str], docs: list[str]) -> tuple[torch.Tensor, dict]:
    emb.zero_grad(set_to_none=True)
    loss = _loss(emb(emb.tokenize(queries, INSTRUCTION)), emb(emb.tokenize(docs)))
    loss.backward()
    return loss.detach(), _grads(emb)


def _cached(emb: Embedder, queries: list[str], docs: list[str], size: int) -> tuple[torch.Tensor, dict]:
    emb.zero_grad(set_to_none=True)
    loss = cached_backward(emb, _chunks(emb, queries, docs, size), _loss, CPU)
    return loss, _grads(emb)


def _assert_same_grads(got: dict, ref: dict) -> None:
    assert set(got) == set(ref)
    nonzero = 0
    for name, r in ref.items():
        g = got[name]
        if r is None:
            assert g is None, f"{name}: gradient where the plain pass has none"
            continue
        assert g is not None, f"{name}: no gradient where the plain pass has one"
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
        nonzero += bool(r.abs().sum() > 0)
    assert nonzero >= len(ref) // 2, "most gradients are zero: the comparison would prove nothing"


@pytest.mark.parametrize("recipe", ["last-token", "causal2vec"])
@pytest.mark.parametrize("size", [4, 3])  # 3: the last chunk of each group is smaller
def test_cached_backward_equals_full_batch(recipe, size, tiny_backbone, tiny_encoder):
    emb = _embedder(recipe, tiny_backbone, tiny_encoder)
    queries, docs = _batch()
    ref_loss, ref = _plain(emb, queries, docs)
    if recipe == "causal2vec":  # the encoder and the projector head are in the chain too
        assert ref["encoder.model.embeddings.word_embeddings.weight"] is not None
        assert any(n.startswith("heads.projector") and g is not None for n, g in ref.items())
    assert ref["backbone.lm_head.weight"] is None  # unused by pooling: must stay None, not zeros
    loss, got = _cached(emb, queries, docs, size)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=0)
    _assert_same_grads(got, ref)


def test_cached_backward_accumulates_into_existing_grads(tiny_backbone, tiny_encoder):
    """Like .backward(), it adds to .grad: two cached calls give twice one plain call."""
    emb = _embedder("last-token", tiny_backbone, tiny_encoder)
    queries, docs = _batch(8)
    _, ref = _plain(emb, queries, docs)
    emb.zero_grad(set_to_none=True)
    for _ in range(2):
        cached_backward(emb, _chunks(emb, queries, docs, 3), _loss, CPU)
    got = _grads(emb)
    _assert_same_grads(got, {n: None if r is None else 2 * r for n, r in ref.items()})


def test_cached_backward_with_lora_reaches_only_adapters(tiny_backbone, tiny_encoder):
    from dec2vec.train.lora import add_lora

    emb = _embedder("last-token", tiny_backbone, tiny_encoder)
    add_lora(emb.backbone, r=4, alpha=8, dropout=0.0)
    lora = {n for n, p in emb.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n for n in lora)
    with torch.no_grad():  # B starts at zero, which would leave A without gradient; make both matter
        gen = torch.Generator().manual_seed(5)
        for n, p in emb.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    queries, docs = _batch()
    ref_loss, ref = _plain(emb, queries, docs)
    loss, got = _cached(emb, queries, docs, 3)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=0)
    _assert_same_grads(got, ref)
    assert {n for n, p in emb.named_parameters() if p.grad is not None} == lora  # frozen base: no .grad
    assert all(got[n].abs().sum() > 0 for n in lora)


@pytest.mark.parametrize("recipe", ["last-token", "causal2vec"])
def test_dropout_masks_are_replayed(recipe, tiny_backbone, tiny_encoder, monkeypatch):
    """With dropout on, the graph pass must draw the masks of the no-grad pass.

    Reference: the same chunks embedded *with* graphs in the same order from the same seed (so the
    same RNG draws, hence the same masks), then one backward. cached_backward must give its grads
    and leave the RNG where that forward left it; with the replay disabled it must not.
    """
    emb = _embedder(recipe, tiny_backbone, tiny_encoder, dropout=True)  # causal2vec: BERT dropout 0.1 too
    set_attention_dropout(emb.backbone, 0.3)
    queries, docs = _batch(8)
    groups = _chunks(emb, queries, docs, 3)
    with torch.no_grad():  # dropout is really active, else the test proves nothing
        assert not torch.allclose(emb(groups[1][0]), emb(groups[1][0]))

    torch.manual_seed(123)
    emb.zero_grad(set_to_none=True)
    reps = [torch.cat([emb(chunk) for chunk in chunks]) for chunks in groups]
    ref_state = torch.get_rng_state()
    ref_loss = _loss(*reps)
    ref_loss.backward()
    ref = _grads(emb)

    torch.manual_seed(123)
    emb.zero_grad(set_to_none=True)
    loss = cached_backward(emb, groups, _loss, CPU)
    torch.testing.assert_close(loss, ref_loss.detach(), rtol=1e-5, atol=0)
    _assert_same_grads(_grads(emb), ref)
    # the RNG moves on as after one pass, so later steps draw what an uncached run would
    assert torch.equal(torch.get_rng_state(), ref_state)

    # negative control: without the replay the graph pass draws new masks and the grads differ
    monkeypatch.setattr(gradcache, "_set_rng_state", lambda state, device: None)
    torch.manual_seed(123)
    emb.zero_grad(set_to_none=True)
    cached_backward(emb, groups, _loss, CPU)
    unreplayed = _grads(emb)
    assert any(r is not None and not torch.allclose(unreplayed[n], r, atol=1e-5, rtol=1e-4) for n, r in ref.items())


# ---- through the trainer ------------------------------------------------------------------------
def _write_pairs(path: Path, n: int = 24) -> Path:
    rng = random.Random(2)
    with open(path, "w") as f:
        for _ in range(n):
            rec = {
                "query": _sentence(rng, rng.randint(2, 6)),
                "positive": _sentence(rng, rng.randint(3, 8)),
                "negatives": [_sentence(rng, rng.randint(3, 8))],
            }
            f.write(json.dumps(rec) + "\n")
    return path


def _train(tmp: Path, name: str, chunk: int, backbone: Path, encoder: Path, data: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from dec2vec.train.config import TrainConfig
    from dec2vec.train.trainer import Trainer

    cfg = TrainConfig.from_dict(
        {
            "model": {"recipe": "causal2vec", "backbone": str(backbone), "encoder": str(encoder), "max_length": 64},
            "output_dir": str(tmp / name),
            "seed": 7,
            "device": "cpu",
            "checkpoint_every": 0,
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            "stages": [
                {
                    "objective": "contrastive",
                    "data": [{"path": str(data), "instruction": INSTRUCTION}],
                    "steps": 3,
                    "batch_size": 8,
                    "chunk_size": chunk,
                    "hard_negatives": 1,
                    "lr": 2e-3,
                    "head_lr": 5e-3,
                }
            ],
        }
    )
    Trainer(cfg, progress=False).run()
    return load_file(tmp / name / "checkpoints" / "step-0000003" / "trainable.safetensors")


@pytest.mark.slow
def test_trainer_chunked_steps_match_unchunked(tmp_path, tiny_backbone, tiny_encoder):
    """3 optimizer steps (AdamW, clipping, warm-up-free schedule) with chunk_size 4 and 3 (uneven
    chunks) end on the weights of chunk_size 0, and log the same losses."""
    data = _write_pairs(tmp_path / "pairs.jsonl")
    ref = _train(tmp_path, "plain", 0, tiny_backbone, tiny_encoder, data)
    assert any("lora_A" in n for n in ref) and any("projector" in n for n in ref)
    assert any("lora_B" in n and ref[n].abs().sum() > 0 for n in ref), "training did not move the weights"
    plain_log = (tmp_path / "plain" / "log.csv").read_text().splitlines()
    loss_col = plain_log[0].split(",").index("loss")
    for chunk in (4, 3):
        got = _train(tmp_path, f"chunk{chunk}", chunk, tiny_backbone, tiny_encoder, data)
        assert set(got) == set(ref)
        for name, value in ref.items():
            torch.testing.assert_close(
                got[name], value, atol=1e-5, rtol=1e-4, msg=lambda m, n=name, c=chunk: f"chunk {c} {n}: {m}"
            )
        log = (tmp_path / f"chunk{chunk}" / "log.csv").read_text().splitlines()
        assert len(log) == len(plain_log) == 4
        for a, b in zip(plain_log[1:], log[1:], strict=True):
            assert float(b.split(",")[loss_col]) == pytest.approx(float(a.split(",")[loss_col]), rel=1e-5)
