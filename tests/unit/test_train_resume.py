"""Runs that survive faults: resume after a crash or kill -9, full disk, bad batches."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from dec2vec.errors import ConfigError, InputError
from dec2vec.train import checkpoint as ckpt
from dec2vec.train import objectives
from dec2vec.train.checkpoint import CheckpointError, TrainingState, save_checkpoint
from dec2vec.train.config import TrainConfig
from dec2vec.train.trainer import Trainer, TrainingError
from tests.unit.train_helpers import read_log, tiny_config

REPO = Path(__file__).resolve().parents[2]


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    out = load_file(model_dir / "backbone" / "model.safetensors")
    if (model_dir / "heads.safetensors").exists():
        out.update({f"heads.{k}": v for k, v in load_file(model_dir / "heads.safetensors").items()})
    return out


def _assert_same(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=1e-5, msg=k)


def _cfg(tmp, backbone, encoder, recipe, objective, name, steps=6, **top):
    d = tmp / name
    d.mkdir()
    cfg = tiny_config(
        d, backbone, recipe, objective, encoder=encoder, steps=steps, batch_size=4, checkpoint_every=2, **top
    )
    cfg["lora"]["dropout"] = 0.1  # draws from the global RNG: resume must restore it
    return cfg


class Crash(Exception):
    pass


def crash_at(monkeypatch, cls, at: int):
    """Make ``cls.step`` raise Crash at global step ``at``; returns the real method to put back."""
    real = cls.step

    def crashing(self, records, spec, step):
        if step == at:
            raise Crash
        return real(self, records, spec, step)

    monkeypatch.setattr(cls, "step", crashing)
    return real


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "objective"), [("causal2vec", "contrastive"), ("unimae", "unimae")])
def test_resume_after_crash_equals_uninterrupted(tmp_path, tiny_backbone, tiny_encoder, monkeypatch, recipe, objective):
    enc = tiny_encoder if recipe == "causal2vec" else None
    full = _cfg(tmp_path, tiny_backbone, enc, recipe, objective, "full")
    ref = Trainer(TrainConfig.from_dict(full), progress=False).run()

    cut = _cfg(tmp_path, tiny_backbone, enc, recipe, objective, "cut")
    cls = objectives.get_objective(objective)
    real = crash_at(monkeypatch, cls, 3)  # after the checkpoint of step 2, in the middle of the run
    with pytest.raises(Crash):
        Trainer(TrainConfig.from_dict(cut), progress=False).run()
    monkeypatch.setattr(cls, "step", real)
    run = Path(cut["output_dir"])
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000002"
    resumed = Trainer(TrainConfig.from_dict(cut), resume=True, progress=False).run()
    _assert_same(ref, resumed)
    assert [int(r["step"]) for r in read_log(run)] == list(range(1, 7))


@pytest.mark.slow
def test_resume_after_kill_9_equals_uninterrupted(tmp_path, tiny_backbone, tiny_encoder):
    steps = 40
    full = _cfg(tmp_path, tiny_backbone, tiny_encoder, "causal2vec", "contrastive", "full", steps=steps)
    ref = Trainer(TrainConfig.from_dict(full), progress=False).run()

    cut = _cfg(tmp_path, tiny_backbone, tiny_encoder, "causal2vec", "contrastive", "cut", steps=steps)
    config = tmp_path / "cut.yaml"
    config.write_text(yaml.safe_dump(cut))
    run = Path(cut["output_dir"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "dec2vec.cli", "train", str(config), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        log = run / "log.csv"
        if log.exists() and len(log.read_text().splitlines()) > 7:  # >= 7 steps done, checkpoints at 2, 4, 6
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run / "model").exists()
    subprocess.run([*cmd, "--resume"], env=env, check=True, timeout=300, capture_output=True)
    _assert_same(ref, run / "model")
    assert [int(r["step"]) for r in read_log(run)] == list(range(1, steps + 1))


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, tiny_backbone, monkeypatch):
    cfg = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "disk")
    real_save = ckpt.torch.save
    calls = {"n": 0}

    def full_disk(obj, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint is intact"):
        Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    root = Path(cfg["output_dir"]) / "checkpoints"
    assert (root / "latest").read_text().strip() == "step-0000002"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-0000002"]  # no half-written folder
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    Trainer(TrainConfig.from_dict(cfg), resume=True, progress=False).run()  # and the run can go on


def test_bad_batch_is_skipped_and_never_reaches_the_weights(tmp_path, tiny_backbone, monkeypatch):
    cfg = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "nan")
    real = objectives.Contrastive.step

    def poisoned(self, records, spec, step):
        result = real(self, records, spec, step)
        if step == 2:
            for p in self.emb.parameters():
                if p.grad is not None:
                    p.grad.fill_(float("nan"))
            result.loss = torch.tensor(float("nan"))
        return result

    monkeypatch.setattr(objectives.Contrastive, "step", poisoned)
    out = Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    rows = read_log(Path(cfg["output_dir"]))
    assert [r["bad_steps"] for r in rows] == ["0", "0", "1", "1", "1", "1"]
    assert all(torch.isfinite(v).all() for v in _weights(out).values())

    def always_nan(self, records, spec, step):
        result = real(self, records, spec, step)
        result.loss = torch.tensor(float("nan")) if step >= 2 else result.loss
        return result

    monkeypatch.setattr(objectives.Contrastive, "step", always_nan)
    again = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "nan2", max_bad_steps=3)
    with pytest.raises(TrainingError, match="3 non-finite losses or gradients in a row"):
        Trainer(TrainConfig.from_dict(again), progress=False).run()
    root = Path(again["output_dir"]) / "checkpoints"
    assert (root / "latest").read_text().strip() == "step-0000004"  # skipped updates: same weights as step 2
    w2, w4 = (load_file(root / f"step-000000{i}" / "trainable.safetensors") for i in (2, 4))
    assert all(torch.equal(w2[k], w4[k]) for k in w2)


def test_non_finite_parameters_are_never_checkpointed(tmp_path):
    p = torch.nn.Parameter(torch.tensor([1.0, float("inf")]))
    opt = torch.optim.AdamW([p])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with pytest.raises(CheckpointError, match="non-finite"):
        save_checkpoint(tmp_path, TrainingState(global_step=1), {"p": p}, opt, sched)
    assert list(tmp_path.iterdir()) == []


def test_resume_refuses_a_different_config(tmp_path, tiny_backbone):
    cfg = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "fp", steps=2)
    Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    cfg["stages"][0]["lr"] = 0.5
    with pytest.raises(ConfigError, match="different config"):
        Trainer(TrainConfig.from_dict(cfg), resume=True, progress=False).run()


@pytest.mark.slow
def test_resume_may_change_the_budget_and_nothing_else(tmp_path, tiny_backbone):
    """`--resume --set stages.0.steps=N`: a run lengthened (or shortened) keeps its weights and log; an end the
    run has passed, or any other change beside the steps, is refused."""
    cfg = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "budget", steps=4)
    Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    run = Path(cfg["output_dir"])
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000004"
    too_short = {**cfg, "stages": [{**cfg["stages"][0], "steps": 3}]}
    with pytest.raises(ConfigError, match="different config"):
        Trainer(TrainConfig.from_dict(too_short), resume=True, progress=False).run()
    other = {**cfg, "stages": [{**cfg["stages"][0], "steps": 6, "lr": 0.5}]}
    with pytest.raises(ConfigError, match="different config"):
        Trainer(TrainConfig.from_dict(other), resume=True, progress=False).run()
    longer = {**cfg, "stages": [{**cfg["stages"][0], "steps": 6}]}
    Trainer(TrainConfig.from_dict(longer), resume=True, progress=False).run()
    assert [int(r["step"]) for r in read_log(run)] == list(range(1, 7))
    assert (run / "config.before-budget-change.json").is_file()
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000006"
    Trainer(TrainConfig.from_dict(longer), resume=True, progress=False).run()  # the new budget is the run's now


def test_safetensors_write_error_keeps_the_previous_checkpoint(tmp_path, tiny_backbone, monkeypatch):
    from safetensors import SafetensorError

    cfg = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "st")
    import safetensors.torch as st

    real = st.save_file
    calls = {"n": 0}

    def failing(tensors, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:  # the second checkpoint's trainable.safetensors
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(st, "save_file", failing)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint is intact"):
        Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    root = Path(cfg["output_dir"]) / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-0000002"]


def test_nan_gradient_with_a_finite_loss_is_skipped(tmp_path, tiny_backbone, monkeypatch):
    cfg = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "nangrad")
    real = objectives.Contrastive.step

    def poisoned(self, records, spec, step):
        result = real(self, records, spec, step)
        if step == 1:
            next(p for p in self.emb.parameters() if p.grad is not None).grad.fill_(float("nan"))
        return result  # the loss itself stays finite

    monkeypatch.setattr(objectives.Contrastive, "step", poisoned)
    out = Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    assert [r["bad_steps"] for r in read_log(Path(cfg["output_dir"]))][:3] == ["0", "1", "1"]
    assert all(torch.isfinite(v).all() for v in _weights(out).values())


def test_a_new_run_refuses_an_output_dir_with_checkpoints(tmp_path, tiny_backbone):
    cfg = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "reuse", steps=2)
    Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    with pytest.raises(ConfigError, match="already holds checkpoints.*--resume"):
        Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    # a resume may move the run (output_dir is not part of the fingerprint) and a lost `latest` is found again
    (Path(cfg["output_dir"]) / "checkpoints" / "latest").unlink()
    Trainer(TrainConfig.from_dict(cfg), resume=True, progress=False).run()


def test_resume_refuses_changed_training_data(tmp_path, tiny_backbone, monkeypatch):
    cfg = _cfg(tmp_path, tiny_backbone, None, "last-token", "contrastive", "data")
    real = crash_at(monkeypatch, objectives.Contrastive, 3)
    with pytest.raises(Crash):
        Trainer(TrainConfig.from_dict(cfg), progress=False).run()
    monkeypatch.setattr(objectives.Contrastive, "step", real)
    data = Path(cfg["stages"][0]["data"][0]["path"])
    data.write_text(data.read_text() + data.read_text())  # e.g. rebuilt between the crash and the resume
    with pytest.raises(InputError, match="changed since the checkpoint"):
        Trainer(TrainConfig.from_dict(cfg), resume=True, progress=False).run()
