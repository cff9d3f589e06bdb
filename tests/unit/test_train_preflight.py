"""The one training preflight: a run that cannot train fails before any model loads, whether it is
started by ``dec2vec train`` or by the Python API (``Trainer``), with the same checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dec2vec.cli import main
from dec2vec.errors import Dec2VecError
from dec2vec.train import trainer as trainer_module
from dec2vec.train.config import TrainConfig
from dec2vec.train.distributed import DistContext
from dec2vec.train.trainer import Trainer
from tests.unit.train_helpers import tiny_config, write_pairs

pytestmark = pytest.mark.usefixtures("no_model_loads")  # a bad run must be refused before any model load


def _config(tmp_path: Path, recipe: str, objective: str, **kw) -> dict:
    # the backbone is never read: every case fails before a model loads
    return tiny_config(tmp_path, tmp_path / "no-backbone", recipe, objective, **kw)


# (id, recipe, objective, changes to the config, processes, the error's text)
CASES = [
    ("objective-not-in-recipe", "mean", "mntp", {}, 1, "recipe 'mean' does not train with 'mntp'"),
    ("batch-not-a-multiple", "mean", "contrastive", {}, 3, "batch_size 8 must be a multiple of the 3 processes"),
    ("projector-init-without-projector", "mean", "contrastive", {"projector_init": "lstsq"}, 1, "needs a recipe"),
    ("distill-without-weight", "mean", "distill", {"stages.0.distill_kl": 0.0}, 1, "not all 0"),
    ("distill-missing-teacher", "mean", "distill", {"stages.0.teacher": "/nowhere/teacher"}, 1, "does not exist"),
    ("validation-split-missing", "mean", "contrastive", {"validate_every": 1}, 1, "no validation split known"),
    ("fsdp-forward-only", "llm2vec", "mntp", {"distributed": "fsdp", "lora": {"enabled": False}}, 2, "outside"),
]


def _apply(cfg: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if key.startswith("stages.0."):
            cfg["stages"][0][key.removeprefix("stages.0.")] = value
        else:
            cfg[key] = value
    return cfg


@pytest.mark.parametrize("recipe,objective,changes,world,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_trainer_refuses_a_bad_run_before_the_model_loads(
    tmp_path, monkeypatch, recipe, objective, changes, world, match
):
    monkeypatch.setattr(trainer_module, "init_distributed", lambda device: DistContext(0, world))
    cfg = TrainConfig.from_dict(_apply(_config(tmp_path, recipe, objective), changes))
    with pytest.raises(Dec2VecError, match=match):
        Trainer(cfg, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("recipe,objective,changes,world,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_dec2vec_train_refuses_a_bad_run_before_the_model_loads(
    tmp_path, monkeypatch, capsys, recipe, objective, changes, world, match
):
    monkeypatch.setenv("WORLD_SIZE", str(world))  # as torchrun sets it; the group is never joined
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_apply(_config(tmp_path, recipe, objective), changes)))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dec2vec: error: ") and match in err, err
    assert not (tmp_path / "run").exists()


def test_a_good_run_passes_the_preflight_and_loads_its_model(tmp_path, monkeypatch):
    """The same checks let a good config through (to the model load this test refuses)."""
    monkeypatch.setattr(trainer_module, "init_distributed", lambda device: DistContext(0, 2))
    cfg = _config(tmp_path, "mean", "contrastive", data=write_pairs(tmp_path / "p.jsonl"))
    with pytest.raises(AssertionError, match="a model was loaded"):
        Trainer(TrainConfig.from_dict(cfg), progress=False)
