"""Validation during training (``validate_every``): valid.csv, untouched RNG streams, resume, the plot script."""

from __future__ import annotations

import csv
import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dec2vec.errors import ConfigError, InputError
from dec2vec.train import objectives
from dec2vec.train import trainer as trainer_mod
from dec2vec.train.config import TrainConfig
from dec2vec.train.fingerprint import config_fingerprint
from dec2vec.train.trainer import Trainer
from dec2vec.train.validate import append_curve_row, kept_rng, read_curve, trim_curve
from tests.unit.train_helpers import read_log, tiny_config, write_pairs

REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp: Path, backbone: Path, encoder: Path, name: str, steps: int = 6, **top) -> dict:
    """Causal2Vec (frozen encoder: validation must hand it back in eval mode) on two pair sources with
    valid splits; LoRA dropout draws from the global RNG on every step."""
    d = tmp / name
    d.mkdir()
    for src, seed in (("alpha", 0), ("beta", 2)):
        write_pairs(d / f"{src}.train.jsonl", n=16, seed=seed)
        write_pairs(d / f"{src}.valid.jsonl", n=8, seed=seed + 1)
    cfg = tiny_config(d, backbone, "causal2vec", "contrastive", encoder=encoder, steps=steps, batch_size=4, **top)
    cfg["stages"][0]["data"] = [{"path": str(d / "alpha.train.jsonl")}, {"path": str(d / "beta.train.jsonl")}]
    cfg["lora"]["dropout"] = 0.1
    return cfg


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    out = load_file(model_dir / "backbone" / "model.safetensors")
    out.update({f"heads.{k}": v for k, v in load_file(model_dir / "heads.safetensors").items()})
    return out


def _assert_equal_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "valid.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_config_checks_and_fingerprint():
    base = {"model": {"recipe": "mean"}, "stages": [{"objective": "contrastive", "data": [{"path": "x.jsonl"}]}]}
    cfg = TrainConfig.from_dict(base)
    assert cfg.validate_every == 0 and cfg.validate_pairs == 50
    with pytest.raises(ConfigError, match="validate_every"):
        TrainConfig.from_dict({**base, "validate_every": -1})
    with pytest.raises(ConfigError, match="validate_pairs"):
        TrainConfig.from_dict({**base, "validate_pairs": 1})
    on = TrainConfig.from_dict({**base, "validate_every": 10, "validate_pairs": 20})
    assert config_fingerprint(on) == config_fingerprint(cfg)  # a resume may switch validation on or off


def test_kept_rng_leaves_every_stream_where_it_was():
    torch.manual_seed(3), random.seed(3), np.random.seed(3)
    expected = (torch.rand(4), random.random(), np.random.rand())
    torch.manual_seed(3), random.seed(3), np.random.seed(3)
    with kept_rng(torch.device("cpu")):
        torch.rand(100), random.random(), np.random.rand(7)
    got = (torch.rand(4), random.random(), np.random.rand())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]


def test_curve_trim_drops_later_and_torn_rows(tmp_path):
    path = tmp_path / "valid.csv"
    cols = ["step", "stage", "tokens", "wall_s", "mrr", "recall_at_1"]
    for step in (0, 2, 4):
        append_curve_row(path, cols, {"step": step, "stage": "s", "tokens": step * 10, "wall_s": 1, "mrr": 0.5})
    with open(path, "a") as f:
        f.write("6,s,60")  # a kill in the middle of a write
    assert [r["step"] for r in read_curve(path)] == ["0", "2", "4"]
    trim_curve(path, 2)
    assert [r["step"] for r in read_curve(path)] == ["0", "2"]
    assert path.read_text().count("\n") == 3  # header + 2 rows, the torn line gone
    assert not list(tmp_path.glob(".*"))  # rewritten atomically, no temporary left


@pytest.mark.slow
def test_validation_writes_the_curve_and_leaves_training_alone(
    tmp_path, tiny_backbone, tiny_encoder, monkeypatch, one_thread
):
    ref_cfg = _cfg(tmp_path, tiny_backbone, tiny_encoder, "plain")
    ref_cfg["stages"][0]["max_length"] = 16  # the stage's limit; validation embeds with the model's (64)
    ref = Trainer(TrainConfig.from_dict(ref_cfg), progress=False).run()
    assert not (ref.parent / "valid.csv").exists()

    seen: list[tuple[bool, bool, bool, int]] = []
    real_validate = trainer_mod.validate

    def noisy_validate(emb, cfg, n):
        # a validation that draws from every stream: the trainer must put them back
        torch.rand(3), random.random(), np.random.rand()
        seen.append((emb.training, torch.is_inference_mode_enabled(), torch.is_grad_enabled(), emb.max_length))
        return real_validate(emb, cfg, n)

    modes: list[tuple[bool, bool]] = []
    cls = objectives.get_objective("contrastive")
    real_step = cls.step

    def watched_step(self, records, spec, step):
        modes.append((self.emb.training, self.emb.encoder.training))
        return real_step(self, records, spec, step)

    monkeypatch.setattr(trainer_mod, "validate", noisy_validate)
    monkeypatch.setattr(cls, "step", watched_step)
    cfg = _cfg(tmp_path, tiny_backbone, tiny_encoder, "valid", validate_every=4, validate_pairs=6)
    cfg["stages"][0]["max_length"] = 16
    out = Trainer(TrainConfig.from_dict(cfg), progress=False).run()

    _assert_equal_weights(ref, out)
    assert seen == [(False, True, False, 64)] * 3  # step 0, step 4, the stage's end (6)
    assert modes == [(True, False)] * 6  # train mode restored, the frozen encoder still in eval mode
    rows = _rows(out.parent)
    assert [int(r["step"]) for r in rows] == [0, 4, 6]
    log_tokens = [int(r["tokens"]) for r in read_log(out.parent)]
    assert [int(r["tokens"]) for r in rows] == [0, sum(log_tokens[:4]), sum(log_tokens)]
    assert list(rows[0]) == [
        "step",
        "stage",
        "tokens",
        "wall_s",
        "mrr",
        "recall_at_1",
        "alpha.mrr",
        "alpha.recall_at_1",
        "beta.mrr",
        "beta.recall_at_1",
        "part:ctx.mrr",  # Causal2Vec's concat: each half alone, and how alike its vectors of different texts are
        "part:ctx.spread",
        "part:eos.mrr",
        "part:eos.spread",
    ]
    for r in rows:
        assert -1 <= float(r["part:ctx.spread"]) <= 1 and 0 < float(r["part:eos.mrr"]) <= 1
        assert float(r["mrr"]) == pytest.approx((float(r["alpha.mrr"]) + float(r["beta.mrr"])) / 2, abs=1e-5)
        assert 0 <= float(r["recall_at_1"]) <= float(r["mrr"]) <= 1
    walls = [float(r["wall_s"]) for r in rows]
    assert walls == sorted(walls)


@pytest.mark.slow
def test_resume_drops_the_killed_runs_later_rows(tmp_path, tiny_backbone, tiny_encoder, monkeypatch, one_thread):
    # sparse log rows: tokens seen must come from the checkpoint's counters (progress.json), not log.csv
    top = {"validate_every": 3, "checkpoint_every": 2, "log_every": 5}
    full = _cfg(tmp_path, tiny_backbone, tiny_encoder, "full", **top)
    ref_rows = _rows(Trainer(TrainConfig.from_dict(full), progress=False).run().parent)

    cut = _cfg(tmp_path, tiny_backbone, tiny_encoder, "cut", **top)
    cls = objectives.get_objective("contrastive")
    real = cls.step

    def crashing(self, records, spec, step):
        if step == 3:  # during step 4: checkpoint 2 is the latest, valid.csv already has step 3
            raise RuntimeError("crash")
        return real(self, records, spec, step)

    monkeypatch.setattr(cls, "step", crashing)
    with pytest.raises(RuntimeError, match="crash"):
        Trainer(TrainConfig.from_dict(cut), progress=False).run()
    run = Path(cut["output_dir"])
    assert [int(r["step"]) for r in _rows(run)] == [0, 3]
    monkeypatch.setattr(cls, "step", real)
    Trainer(TrainConfig.from_dict(cut), resume=True, progress=False).run()

    rows = _rows(run)
    assert [int(r["step"]) for r in rows] == [0, 3, 6]
    assert int(rows[-1]["tokens"]) > int(rows[1]["tokens"]) > 0
    for got, want in zip(rows, ref_rows, strict=True):
        for key in ("step", "tokens", "mrr", "recall_at_1", "alpha.mrr", "beta.mrr"):
            assert got[key] == want[key], key


def test_a_missing_valid_split_fails_before_training(tmp_path, tiny_backbone, tiny_encoder):
    cfg = _cfg(tmp_path, tiny_backbone, tiny_encoder, "nosplit", validate_every=2)
    (tmp_path / "nosplit" / "beta.valid.jsonl").unlink()
    with pytest.raises(InputError, match="beta.valid.jsonl"):
        Trainer(TrainConfig.from_dict(cfg), progress=False)
    (tmp_path / "nosplit" / "beta.valid.jsonl").write_text("")
    with pytest.raises(InputError, match="fewer than 2 pairs"):
        Trainer(TrainConfig.from_dict(cfg), progress=False)


# ---- scripts/learning_curve.py ------------------------------------------------------------------


def _script():
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("learning_curve", REPO / "scripts" / "learning_curve.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _synthetic_run(folder: Path, mrrs: list[float], tokens_per_step: int) -> Path:
    folder.mkdir()
    steps = [0, 10, 20, 25][: len(mrrs)]
    with open(folder / "valid.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "stage", "tokens", "wall_s", "mrr", "recall_at_1", "a.mrr", "a.recall_at_1"])
        for s, m in zip(steps, mrrs, strict=True):
            w.writerow([s, "x", s * tokens_per_step, s * 2.0, m, m / 2, m, m / 2])
    with open(folder / "log.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "stage", "objective", "loss", "tokens"])
        for s in range(1, steps[-1] + 1):
            w.writerow([s, "x", "contrastive", 3.0 / s, tokens_per_step])
    return folder


def test_learning_curve_script_plots_each_run(tmp_path):
    mod = _script()
    a = _synthetic_run(tmp_path / "run-a", [0.1, 0.3, 0.4, 0.45], 100)
    b = _synthetic_run(tmp_path / "run-b", [0.2, 0.25, 0.5], 300)
    out = tmp_path / "curve.png"
    fig = mod.main([str(a), str(b), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_step, by_tokens, loss = fig.axes
    assert [line.get_label() for line in by_step.get_lines()] == ["run-a", "run-b"]
    assert list(by_step.get_lines()[1].get_xdata()) == [0, 10, 20]
    assert list(by_step.get_lines()[0].get_ydata()) == [0.1, 0.3, 0.4, 0.45]
    assert list(by_tokens.get_lines()[1].get_xdata()) == [0, 3000, 6000]
    raw = [line for line in loss.get_lines() if line.get_label() == "run-a"]
    assert len(raw) == 1 and len(raw[0].get_xdata()) == 25


def test_learning_curve_script_needs_a_curve(tmp_path):
    mod = _script()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="valid.csv"):
        mod.main([str(empty), "--out", str(tmp_path / "x.png")])


@pytest.mark.slow
def test_torchrun_validates_on_the_main_process_only(tmp_path, tiny_backbone, tiny_encoder):
    """Two processes with dropout: rank 0 validates while rank 1 waits, and each process's RNG stream is
    unchanged by it (the weights equal a 2-process run without validation); valid.csv is written once."""
    import yaml

    from tests.unit.test_train_distributed import _torchrun, _train_config

    d = tmp_path / "data"
    d.mkdir()
    write_pairs(d / "pairs.train.jsonl", n=24, seed=0)
    write_pairs(d / "pairs.valid.jsonl", n=8, seed=1)
    finals = {}
    for name, every in (("plain", 0), ("valid", 2)):
        cfg = _train_config(tmp_path, name, tiny_backbone, tiny_encoder, d / "pairs.train.jsonl")
        cfg["lora"]["dropout"] = 0.2
        cfg["stages"][0]["steps"] = 4
        cfg["validate_every"] = every
        cfg["validate_pairs"] = 6
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump(cfg))
        _torchrun(config)
        finals[name] = load_file(tmp_path / name / "checkpoints" / "step-0000004" / "trainable.safetensors")
    assert not (tmp_path / "plain" / "valid.csv").exists()
    assert [int(r["step"]) for r in _rows(tmp_path / "valid")] == [0, 2, 4]
    for name, value in finals["plain"].items():
        assert torch.equal(finals["valid"][name], value), name


def test_paired_mrr_difference_tells_a_real_gap_from_noise():
    from dec2vec.train.validate import paired_mrr_difference, retrieval_scores

    rng = np.random.default_rng(3)
    q = rng.normal(size=(60, 16))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    noisy = q + rng.normal(scale=0.9, size=q.shape)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    sharp = q + rng.normal(scale=0.2, size=q.shape)
    sharp /= np.linalg.norm(sharp, axis=1, keepdims=True)
    weak, strong = retrieval_scores(q, noisy), retrieval_scores(q, sharp)
    assert strong["mrr"] == pytest.approx(np.mean(strong["rr"])) and strong["mrr"] > weak["mrr"]

    def result(*per_source):
        return {"sources": {f"s{i}": s for i, s in enumerate(per_source)}}

    diff, lo, hi = paired_mrr_difference(result(weak, weak), result(strong, strong))
    assert diff == pytest.approx(strong["mrr"] - weak["mrr"]) and 0 < lo < diff < hi
    same = paired_mrr_difference(result(weak, strong), result(weak, strong))
    assert same == (0.0, 0.0, 0.0)
    # a gap of one query's rank among 60 pairs is noise: the interval covers 0
    nudged = dict(weak, rr=[1.0, *weak["rr"][1:]])
    _, lo, hi = paired_mrr_difference(result(weak), result(nudged))
    assert lo <= 0 <= hi
