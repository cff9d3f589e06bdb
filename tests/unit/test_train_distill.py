"""Distillation: the similarity-matrix losses by hand, the teacher cache (hits, resume), a tiny run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from dec2vec.errors import ConfigError
from dec2vec.train.config import TrainConfig
from dec2vec.train.losses import info_nce, similarity_kl, similarity_mse, soft_info_nce
from dec2vec.train.preflight import preflight
from dec2vec.train.teacher import TeacherCache
from dec2vec.train.trainer import Trainer
from tests.unit.train_helpers import read_log, tiny_config, write_pairs, write_texts


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _softmax(row: list[float]) -> list[float]:
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def test_similarity_kl_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))  # widths may differ
    tau = 0.5
    cs, ct = _unit(s) @ _unit(s).T, _unit(t) @ _unit(t).T
    total = 0.0
    for i in range(4):
        cols = [j for j in range(4) if j != i]  # a text's similarity to itself is left out
        p = _softmax([ct[i, j] / tau for j in cols])
        q = _softmax([cs[i, j] / tau for j in cols])
        total += sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))
    S, T = torch.tensor(s), torch.tensor(t)
    got = similarity_kl(S, S, T, T, tau)
    assert got.item() == pytest.approx(total / 4, rel=1e-5)
    assert similarity_kl(T, T, T, T, tau).item() == pytest.approx(0.0, abs=1e-6)  # the teacher itself: 0


def test_similarity_kl_rows_against_gathered_columns_use_the_offset():
    rng = np.random.default_rng(1)
    S, T = torch.tensor(rng.normal(size=(6, 4))), torch.tensor(rng.normal(size=(6, 4)))
    whole = similarity_kl(S, S, T, T, 0.1)
    # two "processes" of 3 rows each, scored against all 6: the mean of their losses is the whole one
    halves = [similarity_kl(S[r : r + 3], S, T[r : r + 3], T, 0.1, offset=r) for r in (0, 3)]
    assert float(sum(halves) / 2) == pytest.approx(whole.item(), rel=1e-6)


def test_similarity_mse_matches_a_hand_computation():
    rng = np.random.default_rng(2)
    s, t = rng.normal(size=(3, 4)), rng.normal(size=(3, 6))
    cs, ct = _unit(s) @ _unit(s).T, _unit(t) @ _unit(t).T
    diffs = [(cs[i, j] - ct[i, j]) ** 2 for i in range(3) for j in range(3) if i != j]
    got = similarity_mse(torch.tensor(s), torch.tensor(s), torch.tensor(t), torch.tensor(t))
    assert got.item() == pytest.approx(sum(diffs) / len(diffs), rel=1e-6)


def test_soft_info_nce_by_hand_and_plain_infonce_at_zero_weight():
    rng = np.random.default_rng(3)
    q, d = rng.normal(size=(2, 4)), rng.normal(size=(3, 4))
    tq, td = rng.normal(size=(2, 5)), rng.normal(size=(3, 5))
    tau, tau_t, w = 0.2, 0.1, 0.3
    cs, ct = _unit(q) @ _unit(d).T, _unit(tq) @ _unit(td).T
    total = 0.0
    for i in range(2):
        p_s = _softmax([v / tau for v in cs[i]])
        p_t = _softmax([v / tau_t for v in ct[i]])
        target = [(1 - w) * (j == i) + w * p_t[j] for j in range(3)]
        total -= sum(a * math.log(b) for a, b in zip(target, p_s, strict=True))
    args = [torch.tensor(x) for x in (q, d, tq, td)]
    assert soft_info_nce(*args, tau, tau_t, w).item() == pytest.approx(total / 2, rel=1e-6)
    plain = info_nce(args[0], args[1], tau)
    assert soft_info_nce(*args, tau, tau_t, 0.0).item() == pytest.approx(plain.item(), rel=1e-6)


# ---- the teacher cache ------------------------------------------------------------------------------


class CountingEncoder:
    """A stand-in teacher: a fixed function of the text, counting what it is asked to encode."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.seen: list[str] = []
        self.fail_after = fail_after

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.seen.extend(texts)
        return np.stack([np.array([len(t), t.count("a") + 1.0, sum(map(ord, t)) % 7 + 1.0]) for t in texts])


def test_teacher_cache_hits_and_survives_a_kill(tmp_path, tiny_encoder):
    texts = [f"text number {i} a" * (1 + i % 3) for i in range(10)]
    first = CountingEncoder(fail_after=4)  # dies while encoding the third shard of 2
    cache = TeacherCache(str(tiny_encoder), shard_size=2, encode=first, root=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        cache.ensure(texts, progress=True)
    assert len(first.seen) == 4 and len(list(cache.dir.glob("shard-*.npz"))) == 2
    second = CountingEncoder()
    again = TeacherCache(str(tiny_encoder), shard_size=2, encode=second, root=tmp_path)
    assert len(again) == 4  # the finished shards, read back
    vecs = again.embeddings(texts)
    assert sorted(second.seen) == sorted(texts[4:])  # only what the killed run had not written
    assert vecs.shape == (10, 3) and torch.allclose(vecs.norm(dim=1), torch.ones(10))
    expected = torch.tensor(_unit(CountingEncoder()(texts)), dtype=torch.float32)
    assert torch.allclose(vecs, expected, atol=1e-6)
    third = CountingEncoder()
    hit = TeacherCache(str(tiny_encoder), encode=third, root=tmp_path).embeddings(texts[::-1])
    assert third.seen == [] and torch.allclose(hit, expected.flip(0))  # a full hit, in the asked order
    assert not list(cache.dir.glob(".shard-*"))  # no temporary files left by finished writes


def test_teacher_cache_is_keyed_by_the_weights(tmp_path, tiny_encoder):
    from tests.conftest import save_tiny_encoder

    other = save_tiny_encoder(tmp_path / "other")
    torch.manual_seed(5)
    from transformers import BertModel

    model = BertModel.from_pretrained(other)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.add_(1.0)
    model.save_pretrained(other)
    a = TeacherCache(str(tiny_encoder), encode=CountingEncoder(), root=tmp_path / "c")
    b = TeacherCache(str(other), encode=CountingEncoder(), root=tmp_path / "c")
    assert a.dir != b.dir and a.digest != b.digest


def test_teacher_cache_with_the_real_model_code(tmp_path, tiny_encoder, one_thread):
    """No stand-in: the tiny BERT encodes, and a second cache reads the same vectors from disk."""
    cache = TeacherCache(str(tiny_encoder), root=tmp_path)
    texts = ["the cat sat", "a dog runs on the road", "blue sky"]
    v = cache.embeddings(texts)
    assert v.shape == (3, 24)
    again = TeacherCache(str(tiny_encoder), root=tmp_path)
    assert all(t in again for t in texts) and torch.equal(again.embeddings(texts), v)


# ---- training with it -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("data", ["text", "pairs"])
def test_tiny_model_distils_and_the_loss_falls(tmp_path, monkeypatch, tiny_backbone, tiny_encoder, one_thread, data):
    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    path = write_texts(tmp_path / "t.jsonl", n=16) if data == "text" else write_pairs(tmp_path / "p.jsonl", n=16)
    cfg = tiny_config(tmp_path, tiny_backbone, "mean", "distill", steps=20, batch_size=16, lr=2e-2, data=path)
    cfg["stages"][0].update({"teacher": str(tiny_encoder), "distill_temperature": 0.1})
    if data == "pairs":
        cfg["stages"][0].update({"distill_mse": 1.0, "distill_nce": 1.0, "soft_labels": 0.5})
    Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    rows = read_log(tmp_path / "run")
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 20 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    assert rows[0]["distill_kl"] and (rows[0]["distill_nce"] != "") == (data == "pairs")
    # every text was encoded by the teacher ahead of training, once
    shards = list((tmp_path / "home" / "teacher").rglob("shard-*.npz"))
    assert shards


def test_distill_needs_a_weight_and_a_known_teacher(tmp_path, tiny_backbone):
    cfg = tiny_config(tmp_path, tiny_backbone, "mean", "distill")
    cfg["stages"][0].update({"distill_kl": 0.0})
    with pytest.raises(ConfigError, match="not all 0"):  # Distill.check_config, in the run's preflight
        preflight(TrainConfig.from_dict(cfg), 1)
    cfg["stages"][0].update({"distill_kl": 1.0, "teacher": str(tmp_path / "nowhere")})
    with pytest.raises(Exception, match="does not exist"):
        Trainer(TrainConfig.from_dict(cfg), progress=False)


@pytest.mark.slow
def test_teacher_cache_build_resumes_after_kill_9(tmp_path, tiny_encoder):
    """A real SIGKILL while shards are being written: what was renamed into place is kept and complete."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np
        from pathlib import Path
        from dec2vec.train.teacher import TeacherCache

        def encode(texts):
            time.sleep(0.2)
            return np.stack([np.array([len(t), 1.0]) for t in texts])

        cache = TeacherCache({str(tiny_encoder)!r}, shard_size=3, encode=encode, root=Path({str(tmp_path)!r}))
        print("ready", flush=True)
        cache.ensure([f"text {{i}}" for i in range(300)])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    cache_dir = next(tmp_path.glob("*-native"))
    while len(list(cache_dir.glob("shard-*.npz"))) < 3:
        assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    seen: list[str] = []

    def encode(texts):
        seen.extend(texts)
        return np.stack([np.array([len(t), 1.0]) for t in texts])

    resumed = TeacherCache(str(tiny_encoder), shard_size=50, encode=encode, root=tmp_path)
    done = len(resumed)
    assert 9 <= done < 300 and done % 3 == 0  # whole shards only
    texts = [f"text {i}" for i in range(300)]
    vecs = resumed.embeddings(texts)
    assert len(seen) == 300 - done and vecs.shape == (300, 2)
    expected = torch.tensor(_unit(np.stack([np.array([len(t), 1.0]) for t in texts])), dtype=torch.float32)
    assert torch.allclose(vecs, expected, atol=1e-6)


def test_validation_reads_the_pair_sources_of_a_distill_stage(tmp_path, tiny_backbone):
    from dec2vec.train.validate import valid_sources

    write_pairs(tmp_path / "toy.train.jsonl", n=8)
    write_pairs(tmp_path / "toy.valid.jsonl", n=8, seed=1)
    write_texts(tmp_path / "plain.train.jsonl", n=8)  # plain text ranks nothing: skipped
    cfg = tiny_config(tmp_path, tiny_backbone, "mean", "distill", data=tmp_path / "toy.train.jsonl")
    cfg["stages"][0]["data"].append({"path": str(tmp_path / "plain.train.jsonl")})
    (src,) = valid_sources(TrainConfig.from_dict(cfg))
    assert src.path.name == "toy.valid.jsonl"


def test_distill_with_gradient_caching_equals_the_full_batch(tmp_path, monkeypatch, tiny_backbone, tiny_encoder):
    from dec2vec.train.data import Record
    from dec2vec.train.distributed import DistContext
    from dec2vec.train.objectives import build_objective

    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    records = [Record(query=f"the cat {w}", positive=f"a dog {w}", negatives=(f"blue {w}",)) for w in "abcdef"]
    results = []
    for chunk in (0, 4):
        cfg = tiny_config(
            tmp_path / f"c{chunk}", tiny_backbone, "mean", "distill", data=write_pairs(tmp_path / "p.jsonl")
        )
        cfg["stages"][0].update({"teacher": str(tiny_encoder), "chunk_size": chunk, "distill_nce": 1.0})
        cfg["lora"]["enabled"] = False
        trainer = Trainer(TrainConfig.from_dict(cfg), progress=False)
        obj = build_objective(trainer.emb, trainer.cfg.stages[0], DistContext(), 0)
        trainer.train(True)
        res = obj.step(records, trainer.cfg.stages[0].data[0], 0)
        grads = {n: p.grad.clone() for n, p in trainer.emb.named_parameters() if p.grad is not None}
        results.append((res, grads))
    (full, g_full), (cached, g_cached) = results
    assert cached.loss.item() == pytest.approx(full.loss.item(), rel=1e-5)
    assert cached.parts.keys() == full.parts.keys() == {"distill_kl", "distill_nce"}
    assert g_full.keys() == g_cached.keys() and g_full
    for n in g_full:
        assert torch.allclose(g_full[n], g_cached[n], atol=1e-5, rtol=1e-4), n


def test_a_shared_stage_draws_the_same_batches_after_other_stages(
    tmp_path, monkeypatch, tiny_backbone, tiny_encoder, one_thread
):
    """The reproduction's fairness rests on this: LLM2Vec's distillation stage, run after MNTP and SimCSE,
    draws the flagship's batches (same sources, same records, same order) when it is given the seed the
    stage has there."""
    from dec2vec.train import data as data_mod

    real_batch = data_mod.MixtureLoader.batch
    calls: list[tuple[str, str]] = []

    def recording_batch(self, step, size):
        spec, records = real_batch(self, step, size)
        calls.append((str(spec.name), records[0].query or records[0].text))
        return spec, records

    monkeypatch.setattr(data_mod.MixtureLoader, "batch", recording_batch)
    pair_sources = [write_pairs(tmp_path / f"{name}.jsonl", n=64, seed=seed) for name, seed in [("p", 0), ("q", 5)]]
    texts = write_texts(tmp_path / "t.jsonl", n=32)
    drawn = {}
    for name, first, seed in [("alone", False, None), ("shared", True, 0), ("default", True, None)]:
        monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / name / "home"))
        (tmp_path / name).mkdir()
        cfg = tiny_config(tmp_path / name, tiny_backbone, "mean", "distill", steps=8, batch_size=2)
        cfg["stages"][0].update(
            teacher=str(tiny_encoder), data_seed=seed, data=[{"path": str(p)} for p in pair_sources]
        )
        if first:
            pre = {"objective": "simcse", "data": [{"path": str(texts)}], "steps": 3, "batch_size": 4, "lr": 1e-3}
            cfg["stages"].insert(0, pre)
        calls.clear()
        Trainer(TrainConfig.from_dict(cfg), progress=False).run()
        drawn[name] = calls[-8:]  # the distillation stage's training batches
    assert {source for source, _ in drawn["alone"]} == {"p", "q"}
    assert drawn["shared"] == drawn["alone"]
    assert drawn["default"] != drawn["alone"]  # without the seed, the stage's index changes its data
    # training.json says what ran the steps (the report's hardware column)
    summary = json.loads((tmp_path / "alone" / "run" / "model" / "training.json").read_text())
    assert summary["device"] == f"cpu ({torch.get_num_threads()} threads) x 1"
