"""The objective registry: one registered class per objective, read by the run's preflight, the trainer,
validation, the log and the docs, so a new objective is one class."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import pytest

from dec2vec.errors import ConfigError
from dec2vec.recipes import get_recipe, recipe_names
from dec2vec.train import objectives
from dec2vec.train.config import DataSpec, ModelSpec, StageConfig, TrainConfig
from dec2vec.train.objectives import registry
from dec2vec.train.preflight import preflight
from dec2vec.train.runlog import log_columns
from dec2vec.train.trainer import Trainer
from dec2vec.train.validate import valid_sources
from tests.unit.train_helpers import read_log, tiny_config, write_pairs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "TRAINING.md"
BUILT_IN = ["contrastive", "simcse", "mntp", "unimae", "distill"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test are gone after it."""
    monkeypatch.setattr(registry, "_OBJECTIVES", dict(registry._OBJECTIVES))


def _stage(objective: str, **kw) -> StageConfig:
    """A stage, checked as the run's preflight checks it: its objective (known, its own settings) first,
    then the recipe and the data files, which are not what these tests are about."""
    stage = StageConfig(objective=objective, data=[DataSpec(path="x.jsonl")], **kw)
    try:
        preflight(TrainConfig(model=ModelSpec(recipe="mean"), stages=[stage]), 1)
    except ConfigError as e:
        if "does not train with" not in str(e) and "training data not found" not in str(e):
            raise
    return stage


def test_the_built_in_objectives_in_order():
    assert objectives.objective_names() == BUILT_IN
    for name in BUILT_IN:
        assert objectives.get_objective(name).name == name


def test_an_unknown_objective_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError, match="unknown objective 'mlm'; known: contrastive, simcse, mntp, unimae, distill"):
        _stage("mlm")
    base = {"model": {"recipe": "mean"}, "stages": [{"objective": "mlm", "data": [{"path": "x"}]}]}
    with pytest.raises(ConfigError, match=r"stages\.0 \('mlm'\): unknown objective 'mlm'; known: contrastive"):
        preflight(TrainConfig.from_dict(base), 1)


def test_registering_an_objective_makes_the_preflight_accept_it(scratch_registry):
    with pytest.raises(ConfigError, match="unknown objective 'echo-nce'"):
        _stage("echo-nce")

    @objectives.register
    class EchoNCE(objectives.Contrastive):
        name = "echo-nce"
        parts = ("echo-nce",)

        @classmethod
        def check_config(cls, stage: StageConfig) -> None:
            if stage.hard_negatives:
                raise ConfigError("echo-nce takes no hard negatives")

    assert _stage("echo-nce", hard_negatives=0).name == "echo-nce"
    assert objectives.objective_names()[-1] == "echo-nce"
    with pytest.raises(ConfigError, match="echo-nce takes no hard negatives"):  # its own check runs
        _stage("echo-nce", hard_negatives=1)
    with pytest.raises(ConfigError, match="known: contrastive, simcse, mntp, unimae, distill, echo-nce"):
        _stage("nope")
    assert log_columns()[-7] == "echo-nce"  # logged after the built-in parts, before lr


def test_registration_is_checked(scratch_registry):
    class Twin(objectives.Contrastive):
        name = "contrastive"
        parts = ("contrastive",)

    with pytest.raises(ValueError, match="registered twice"):
        objectives.register(Twin)
    objectives.register(objectives.Contrastive)  # the same class again is fine

    class Odd(objectives.Contrastive):
        name = "odd"
        kind = "images"

    with pytest.raises(ValueError, match="kind must be one of"):
        objectives.register(Odd)

    class Silent(objectives.Objective):
        name = "silent"

    with pytest.raises(ValueError, match="parts must name"):
        objectives.register(Silent)


def test_every_objective_is_accepted_by_a_recipe_and_every_recipe_names_known_objectives():
    for name in objectives.objective_names():
        assert objectives.recipes_accepting(name), f"no recipe trains with '{name}'"
    for recipe in recipe_names():
        for loss in get_recipe(recipe).losses:
            objectives.get_objective(loss)  # raises for a name no objective is registered under


def test_the_log_columns_stay_those_of_runs_in_progress():
    # a run started before objectives were registered resumes by appending to its log.csv
    assert log_columns() == [
        "step",
        "stage",
        "objective",
        "loss",
        "contrastive",
        "simcse",
        "mntp",
        "mar",
        "mrc",
        "distill_kl",
        "distill_mse",
        "distill_nce",
        "lr",
        "tokens",
        "tokens_per_s",
        "sec_per_step",
        "bad_steps",
        "bad_lines",
    ]


def test_validation_reads_the_objectives_kind(tmp_path, scratch_registry):
    pairs = write_pairs(tmp_path / "p.train.jsonl")
    write_pairs(tmp_path / "p.valid.jsonl", seed=1)

    @objectives.register
    class TextOnly(objectives.SimCSE):
        name = "text-only"
        parts = ("text-only",)

    def config(objective: str) -> TrainConfig:
        stage = {"objective": objective, "data": [{"path": str(pairs)}]}
        return TrainConfig.from_dict({"model": {"recipe": "mean"}, "stages": [stage]})

    assert [s.path for s in valid_sources(config("contrastive"))] == [tmp_path / "p.valid.jsonl"]
    with pytest.raises(ConfigError, match="no contrastive data"):  # a text objective's data ranks nothing
        valid_sources(config("text-only"))


def test_a_registered_objective_trains_end_to_end(tmp_path, tiny_backbone, monkeypatch, scratch_registry, one_thread):
    @objectives.register
    class Reverse(objectives.Contrastive):
        """Contrastive under another name, counting its batches: a new objective is this one class."""

        name = "reverse"
        parts = ("reverse",)
        seen: ClassVar[list[int]] = []

        def step(self, records, spec, step):  # not ``groups``: the trainer's worker plans with it too
            type(self).seen.append(len(records))
            return super().step(records, spec, step)

    mean = get_recipe("mean")
    monkeypatch.setattr(mean, "losses", (*mean.losses, "reverse"))  # the recipe trains with it
    cfg = TrainConfig.from_dict(tiny_config(tmp_path, tiny_backbone, "mean", "reverse", steps=2, batch_size=4))
    Trainer(cfg, progress=False).run()
    rows = read_log(tmp_path / "run")
    assert [r["objective"] for r in rows] == ["reverse", "reverse"]
    assert all(float(r["reverse"]) > 0 for r in rows)
    assert Reverse.seen == [4, 4]


def _table(heading: str) -> list[list[str]]:
    """The first markdown table after ``heading`` in docs/TRAINING.md, as rows of cells (header dropped)."""
    text = DOCS.read_text()
    rest = text[text.index(heading) :]
    lines = rest.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_docs_list_every_objective_as_registered():
    rows = {_names(r[0])[0]: r for r in _table("## Objectives")}
    assert list(rows) == objectives.objective_names()
    for name, (_, recipes, _what, parts) in rows.items():
        accepting = objectives.recipes_accepting(name)
        if recipes == "all":
            assert accepting == recipe_names(), name
        else:
            assert _names(recipes) == accepting, name
        assert tuple(_names(parts)) == objectives.get_objective(name).parts, name
    # the data table: one row per kind of data
    kinds = {}
    for cells in _table("## Data"):
        names = _names(cells[0])
        assert len({objectives.get_objective(n).kind for n in names}) == 1, names
        kinds.update(dict.fromkeys(names, objectives.get_objective(names[0]).kind))
    assert sorted(kinds) == sorted(objectives.objective_names())
