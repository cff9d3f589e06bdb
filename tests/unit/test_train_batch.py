"""The contrastive batch: false negatives masked (in a process, across processes, SimCSE), length buckets,
bf16 autocast steps, and Causal2Vec's projector warm start and BOS warning."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from dec2vec import Embedder
from dec2vec.train.config import DataSpec, TrainConfig
from dec2vec.train.data import MixtureLoader, Record, record_length
from dec2vec.train.distributed import DistContext
from dec2vec.train.losses import false_negative_mask, info_nce, text_ids
from dec2vec.train.objectives import batch_false_negatives, pair_documents
from dec2vec.train.trainer import Trainer
from tests.unit.train_helpers import read_log, tiny_config, write_pairs


def _mask(records: list[Record], hard: int = 1) -> tuple[torch.Tensor, list[str]]:
    docs, owners = pair_documents(records, hard)
    queries = [r.query for r in records]
    mask, offset = batch_false_negatives(queries, docs[: len(records)], docs, owners, DistContext())
    assert offset == 0
    return mask, docs


def test_one_definition_asked_by_several_examples_is_masked():
    """wordnet-gloss-example: the same gloss is the query of several example sentences."""
    gloss = "a domesticated carnivorous mammal"
    records = [
        Record(query=gloss, positive="the dog barked all night", negatives=("a wild wolf howled",)),
        Record(query="a round fruit", positive="she ate an apple"),
        Record(query=gloss, positive="he walked his dog in the park"),
    ]
    mask, docs = _mask(records)
    assert docs == [r.positive for r in records] + ["a wild wolf howled"]
    # query 0 must not push away example 2 (it answers the same gloss), nor query 2 example 0
    assert mask[0].tolist() == [False, False, True, False]
    assert mask[2].tolist() == [True, False, False, False]
    assert not mask[1].any()


def test_equal_positives_and_hard_negatives_that_answer_are_masked():
    records = [
        Record(query="q1", positive="same answer"),
        Record(query="q2", positive="same answer"),
        Record(query="q3", positive="p3", negatives=("p3 neighbour",)),
        Record(query="q4", positive="p3 neighbour"),  # q3's hard negative is q4's positive: dropped
    ]
    mask, docs = _mask(records)
    assert docs == ["same answer", "same answer", "p3", "p3 neighbour"]
    assert mask[0, 1] and mask[1, 0] and not mask[0, 0] and not mask[1, 1]
    assert mask.sum() == 2


def test_masked_info_nce_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    q, d = rng.normal(size=(3, 4)), rng.normal(size=(4, 4))
    mask = torch.tensor([[False, False, True, False], [False, False, False, False], [True, False, False, True]])
    qn, dn = q / np.linalg.norm(q, axis=1, keepdims=True), d / np.linalg.norm(d, axis=1, keepdims=True)
    s = qn @ dn.T / 0.1
    total = 0.0
    for i in range(3):
        kept = [j for j in range(4) if not mask[i, j]]
        total += -s[i, i] + math.log(sum(math.exp(s[i, j]) for j in kept))
    got = info_nce(torch.tensor(q), torch.tensor(d), 0.1, 0, mask)
    assert got.item() == pytest.approx(total / 3, rel=1e-6)
    assert got.item() < info_nce(torch.tensor(q), torch.tensor(d), 0.1).item()  # fewer negatives, lower loss


def test_mask_across_processes_after_gathering():
    """Rank 1 of 2: its query equals a query of rank 0, whose positive sits at a gathered index < offset."""
    rank0 = [Record(query="gloss A", positive="example 1"), Record(query="q", positive="shared")]
    rank1 = [Record(query="gloss A", positive="example 2"), Record(query="r", positive="shared")]
    docs0, owners0 = pair_documents(rank0, 0)
    docs1, owners1 = pair_documents(rank1, 0)
    doc_ids, owner_ids = text_ids(docs0 + docs1), text_ids(owners0 + owners1)  # what gather_rows returns
    mask = false_negative_mask(
        text_ids(["gloss A", "r"]), text_ids(["example 2", "shared"]), doc_ids, owner_ids, offset=len(docs0)
    )
    assert mask.tolist() == [[True, False, False, False], [False, True, False, False]]


def test_simcse_repeats_are_masked(tiny_backbone):
    from dec2vec.train.config import StageConfig
    from dec2vec.train.objectives import SimCSE

    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="float32")
    stage = StageConfig(objective="simcse", data=[DataSpec(path="x.jsonl")])
    obj = SimCSE(emb, stage, DistContext(), 0)
    texts = ["the cat", "a dog", "the cat"]
    q, _, d, owners = obj.groups([Record(text=t) for t in texts], stage.data[0])
    mask, _ = batch_false_negatives(q, d[: len(q)], d, owners, DistContext())
    assert mask.tolist() == [[False, False, True], [False, False, False], [True, False, False]]


# ---- length buckets ----------------------------------------------------------------------------------


def _texts_file(path, n=64):
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"text": " ".join(["w"] * int(rng.integers(1, 40))) + f" {i}"}) + "\n")
    return path


def test_length_buckets_reduce_padding_and_are_deterministic(tmp_path):
    spec = [DataSpec(path=str(_texts_file(tmp_path / "t.jsonl")))]

    def batches(buckets, n=8):
        loader = MixtureLoader(spec, "text", seed=3, buffer=100, skip_bad=False, buckets=buckets)
        return [loader.batch(s, 8)[1] for s in range(n)]

    def padding(bs):
        return sum(max(map(record_length, b)) * len(b) - sum(map(record_length, b)) for b in bs)

    plain, bucketed = batches(0), batches(4)
    assert padding(bucketed) < 0.5 * padding(plain)
    assert sorted(r.text for b in bucketed for r in b) == sorted(r.text for b in plain for r in b)  # same records
    assert bucketed == batches(4)  # same seed, same batches


def test_length_buckets_resume_mid_pool(tmp_path):
    spec = [DataSpec(path=str(_texts_file(tmp_path / "t.jsonl")))]
    whole = MixtureLoader(spec, "text", seed=1, buffer=100, skip_bad=False, buckets=3)
    expected = [whole.batch(s, 4)[1] for s in range(10)]
    first = MixtureLoader(spec, "text", seed=1, buffer=100, skip_bad=False, buckets=3)
    got = [first.batch(s, 4)[1] for s in range(4)]  # stops inside the second pool
    state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint stores it
    second = MixtureLoader(spec, "text", seed=1, buffer=100, skip_bad=False, buckets=3)
    second.load_state_dict(state)
    got += [second.batch(s, 4)[1] for s in range(4, 10)]
    assert got == expected


# ---- bf16 autocast -----------------------------------------------------------------------------------


def test_bf16_autocast_training_steps(tmp_path, tiny_backbone, one_thread):
    cfg = tiny_config(tmp_path, tiny_backbone, "mean", "contrastive", steps=3, precision="bf16", length_buckets=2)
    Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    losses = [float(r["loss"]) for r in read_log(tmp_path / "run")]
    assert len(losses) == 3 and all(np.isfinite(losses))


# ---- Causal2Vec --------------------------------------------------------------------------------------


def test_projector_lstsq_warm_start_fits_mean_token_embeddings(tmp_path, tiny_backbone, tiny_encoder, one_thread):
    from dec2vec.recipes.causal2vec import fit_projector, mean_token_embeddings

    emb = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu", dtype="float32")
    texts = [f"{a} {b} {c}" for a in ("the cat", "a dog", "blue sky") for b in ("sat", "ran", "was") for c in "xyz"]

    def error() -> float:
        with torch.no_grad():
            enc = emb.encoder.tokenize(texts)
            out = emb.heads["projector"](emb.encoder(enc["encoder_input_ids"], enc["encoder_attention_mask"]))
        return float((out - mean_token_embeddings(emb, texts)).pow(2).mean())

    before = error()
    r2 = fit_projector(emb, texts)
    assert 0.0 < r2 <= 1.0
    assert error() < 0.5 * before


def test_projector_init_in_a_run_and_refused_without_projector(tmp_path, tiny_backbone, tiny_encoder, one_thread):
    from dec2vec.errors import ConfigError

    cfg = tiny_config(tmp_path, tiny_backbone, "causal2vec", "contrastive", encoder=tiny_encoder, steps=1)
    cfg.update(projector_init="lstsq", projector_init_texts=16)
    trainer = Trainer(TrainConfig.from_dict(cfg), progress=False)
    before = trainer.emb.heads["projector"].net[2].weight.clone()
    trainer.run()
    assert not torch.equal(before, trainer.emb.heads["projector"].net[2].weight)
    (tmp_path / "b").mkdir()
    cfg = tiny_config(tmp_path / "b", tiny_backbone, "mean", "contrastive", steps=1, projector_init="lstsq")
    with pytest.raises(ConfigError, match="projector"):
        Trainer(TrainConfig.from_dict(cfg), progress=False)


def test_bos_first_warns_when_the_tokenizer_has_no_bos(tmp_path, tiny_encoder):
    from tests.conftest import save_tiny_backbone

    folder = save_tiny_backbone(tmp_path / "nobos")
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["bos_token"] = None
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="bos_first cannot apply"):
        Embedder.from_recipe("causal2vec", folder, tiny_encoder, device="cpu", dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        Embedder.from_recipe("causal2vec", folder, tiny_encoder, device="cpu", dtype="float32", bos_first=False)


def test_existing_contrastive_data_path_still_trains(tmp_path, tiny_backbone, one_thread):
    data = write_pairs(tmp_path / "p.jsonl", n=8)
    cfg = tiny_config(tmp_path, tiny_backbone, "last-token", "contrastive", steps=2, data=data)
    Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    assert len(read_log(tmp_path / "run")) == 2


def test_bf16_autocast_keeps_the_loss_in_fp32(tmp_path, tiny_backbone, one_thread):
    """The loss of a bf16-autocast step equals the fp32 loss of the same embeddings (no bf16 rounding)."""
    from dec2vec.train.config import StageConfig
    from dec2vec.train.objectives import Contrastive

    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="float32")
    stage = StageConfig(objective="contrastive", data=[DataSpec(path="x.jsonl")], temperature=0.01)
    obj = Contrastive(emb, stage, DistContext(), 0)
    seen = {}

    def loss_fn(q, d):
        seen["q"], seen["d"] = q.detach().clone(), d.detach().clone()
        return info_nce(q, d, 0.01)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = obj.embed_grouped([(["the cat sat", "a dog runs"], None), (["blue sky", "red car"], None)], loss_fn)
    assert seen["q"].dtype == torch.float32
    assert loss.item() == pytest.approx(info_nce(seen["q"], seen["d"], 0.01).item(), rel=1e-6)
