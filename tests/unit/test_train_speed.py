"""Fast steps and long sequences: gradient checkpointing gives the same gradients (with GradCache too),
compiled layers the same gradients, batches prepared ahead the same run; the config switches."""

from __future__ import annotations

import threading

import pytest
import torch
from safetensors.torch import load_file

from dec2vec import Embedder
from dec2vec.errors import ConfigError
from dec2vec.train.config import StageConfig, TrainConfig
from dec2vec.train.distributed import DistContext
from dec2vec.train.fingerprint import config_fingerprint
from dec2vec.train.lora import set_trainable
from dec2vec.train.objectives import build_objective
from dec2vec.train.preflight import preflight
from dec2vec.train.speed import compile_layers, decoder_layers, enable_gradient_checkpointing
from dec2vec.train.trainer import Trainer
from tests.unit.train_helpers import read_log, tiny_config, write_pairs

pytestmark = pytest.mark.usefixtures("one_thread")


def _grads(tmp_path, backbone, encoder, *, checkpointing=False, chunk=0, compiled=False, dropout=0.0):
    """Gradients of one contrastive step of a tiny Causal2Vec with LoRA on a fixed batch."""
    from dec2vec.train.data import MixtureLoader

    cfg = TrainConfig.from_dict(
        tiny_config(tmp_path, backbone, "causal2vec", "contrastive", encoder=encoder, batch_size=6)
    )
    cfg.lora.dropout = dropout
    stage = cfg.stages[0]
    stage.chunk_size = chunk
    torch.manual_seed(0)
    emb = Embedder.from_recipe("causal2vec", str(backbone), encoder=str(encoder), device="cpu", dtype="float32")
    set_trainable(emb, cfg)
    if checkpointing:
        enable_gradient_checkpointing(emb)
    if compiled:
        compile_layers(emb, backend="aot_eager")
    emb.train()
    objective = build_objective(emb, stage, DistContext(), 0)
    spec, records = MixtureLoader(stage.data, "pairs", seed=0, buffer=100, skip_bad=False).batch(0, 6)
    torch.manual_seed(1)  # the same dropout draws
    result = objective.step(records, spec, 0)
    grads = {n: p.grad.clone() for n, p in emb.named_parameters() if p.grad is not None}
    return float(result.loss), grads, emb


@pytest.mark.parametrize("chunk", [0, 2], ids=["plain", "gradcache"])
def test_gradient_checkpointing_gives_the_same_gradients(tmp_path, tiny_backbone, tiny_encoder, chunk):
    loss, ref, _ = _grads(tmp_path, tiny_backbone, tiny_encoder, chunk=chunk, dropout=0.1)
    calls = []
    loss_ck, got, emb = _grads(tmp_path, tiny_backbone, tiny_encoder, checkpointing=True, chunk=chunk, dropout=0.1)
    assert any(getattr(m, "gradient_checkpointing", False) for m in decoder_layers(emb.backbone))
    assert loss_ck == pytest.approx(loss, rel=1e-6)
    assert set(got) == set(ref) and any("lora_B" in n for n in ref) and any("projector" in n for n in ref)
    for name, g in ref.items():
        torch.testing.assert_close(got[name], g, atol=1e-6, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
    # and it did recompute: a layer's parts run once more per backward than without checkpointing
    part = next(decoder_layers(emb.backbone)[0].children())
    part.register_forward_hook(lambda *_: calls.append(1))
    emb.zero_grad()
    out = emb(emb.tokenize(["a cat", "the dog sat"]))
    assert len(calls) == 1
    out.sum().backward()
    assert len(calls) == 2


@pytest.mark.slow  # dynamo tracing: ~6 s on one core
def test_compiled_layers_give_the_same_gradients(tmp_path, tiny_backbone, tiny_encoder):
    loss, ref, _ = _grads(tmp_path, tiny_backbone, tiny_encoder)
    loss_c, got, _ = _grads(tmp_path, tiny_backbone, tiny_encoder, compiled=True)
    assert loss_c == pytest.approx(loss, rel=1e-5)
    for name, g in ref.items():
        torch.testing.assert_close(got[name], g, atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def test_batches_prepared_ahead_train_the_same_run(tmp_path, tiny_backbone, tiny_encoder):
    """Prefetch on and off: the same losses, the same checkpointed weights and data position; with it on,
    every input was tokenised by the worker thread, none on the main thread."""
    data = write_pairs(tmp_path / "pairs.jsonl", n=40)
    runs = {}
    for prefetch in (True, False):
        out = tmp_path / f"run-{prefetch}"
        cfg = tiny_config(
            tmp_path, tiny_backbone, "causal2vec", "contrastive", encoder=tiny_encoder, steps=4, data=data
        )
        cfg.update(output_dir=str(out), prefetch=prefetch, checkpoint_every=2, length_buckets=2)
        cfg["stages"][0]["chunk_size"] = 3
        trainer = Trainer(TrainConfig.from_dict(cfg), progress=False)
        threads: list[str] = []

        def features(*a, _seen=threads, _original=trainer.emb.pipeline.features, **k):
            _seen.append(threading.current_thread().name)
            return _original(*a, **k)

        trainer.emb.pipeline.features = features
        trainer.run()
        runs[prefetch] = (out, set(threads))
    (on, threads_on), (off, threads_off) = runs[True], runs[False]
    assert threads_off == {"MainThread"}
    assert len(threads_on) == 1 and next(iter(threads_on)).startswith("dec2vec-train-ahead")
    assert [r["loss"] for r in read_log(on)] == [r["loss"] for r in read_log(off)]
    for step in ("step-0000002", "step-0000004"):
        a = load_file(on / "checkpoints" / step / "trainable.safetensors")
        b = load_file(off / "checkpoints" / step / "trainable.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in b)
        state = (on / "checkpoints" / step / "state.json").read_text()
        assert state == (off / "checkpoints" / step / "state.json").read_text()  # the data position too


def test_config_switches(tmp_path, tiny_backbone):
    base = tiny_config(tmp_path, tiny_backbone, "mean", "contrastive")
    cfg = TrainConfig.from_dict(base)
    assert not cfg.gradient_checkpointing and not cfg.compile and cfg.prefetch and cfg.distributed == "ddp"
    fast = TrainConfig.from_dict({**base, "gradient_checkpointing": True, "compile": True, "prefetch": False})
    assert config_fingerprint(fast) == config_fingerprint(cfg)  # how fast, not what: a resume may change them
    with pytest.raises(ConfigError, match="distributed must be one of"):
        TrainConfig.from_dict({**base, "distributed": "zero3"})
    with pytest.raises(ConfigError, match="full fine-tuning"):
        TrainConfig.from_dict({**base, "distributed": "fsdp"})  # LoRA is on by default
    full = {**base, "distributed": "fsdp", "lora": {"enabled": False}}
    assert config_fingerprint(TrainConfig.from_dict(full)) != config_fingerprint(
        TrainConfig.from_dict({**base, "lora": {"enabled": False}})
    )
    with pytest.raises(ConfigError, match="validate_every"):
        TrainConfig.from_dict({**full, "validate_every": 5})
    mntp = tiny_config(tmp_path, tiny_backbone, "llm2vec", "mntp")
    with pytest.raises(ConfigError, match="outside the model's forward"):  # the objective: in the run's preflight
        preflight(TrainConfig.from_dict({**mntp, "distributed": "fsdp", "lora": {"enabled": False}}), 2)
    assert StageConfig  # imported for the registry


def test_the_documented_big_model_config_is_valid(tmp_path):
    """docs/TRAINING.md's "Training a 1–8B model" config loads (on the shipped config) and validates."""
    import re
    import shutil
    from pathlib import Path

    from dec2vec.train.config import load_config

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "TRAINING.md").read_text()
    block = re.search(r"### A config\n\n```yaml\n(.*?)```", doc, re.S)
    assert block is not None
    shutil.copy(root / "configs" / "causal2vec-distill.yaml", tmp_path)
    (tmp_path / "big.yaml").write_text(block.group(1))
    cfg = load_config(tmp_path / "big.yaml")
    assert cfg.distributed == "fsdp" and cfg.gradient_checkpointing and not cfg.lora.enabled
    stage = cfg.stages[0]
    assert (stage.objective, stage.max_length, stage.batch_size, stage.chunk_size) == ("distill", 512, 512, 32)
