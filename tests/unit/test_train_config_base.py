"""Config files that start from another (``base:``): what merges, what is replaced, what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dec2vec.errors import ConfigError
from dec2vec.train.config import load_config
from dec2vec.train.fingerprint import config_fingerprint

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "model": {"recipe": "causal2vec", "backbone": "smollm2-135m-instruct", "encoder": "all-minilm-l6-v2"},
    "output_dir": "runs/base",
    "lora": {"r": 16, "alpha": 32},
    "stages": [
        {
            "objective": "contrastive",
            "name": "pairs",
            "data": [{"path": "a.jsonl", "instruction": "Given a word, retrieve its definition"}],
            "steps": 100,
            "batch_size": 8,
        }
    ],
}


def _write(path: Path, values: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values))
    return path


def test_a_child_overrides_keys_and_keeps_the_rest(tmp_path):
    _write(tmp_path / "base.yaml", BASE)
    child = _write(
        tmp_path / "sub" / "child.yaml",
        {"base": "../base.yaml", "model": {"recipe": "last-token", "encoder": None}, "lora": {"r": 8}},
    )
    cfg = load_config(child)
    assert (cfg.model.recipe, cfg.model.encoder, cfg.model.backbone) == ("last-token", None, "smollm2-135m-instruct")
    assert (cfg.lora.r, cfg.lora.alpha) == (8, 32)  # mappings merge key by key
    assert cfg.stages[0].data[0].instruction == "Given a word, retrieve its definition"
    assert cfg.output_dir == "runs/base"


def test_stages_are_replaced_but_may_reuse_a_base_stage_by_name(tmp_path):
    _write(tmp_path / "base.yaml", BASE)
    mntp = {"objective": "mntp", "data": [{"path": "t.jsonl"}], "steps": 5, "batch_size": 4}
    child = _write(
        tmp_path / "child.yaml",
        {
            "base": "base.yaml",
            "model": {"recipe": "llm2vec", "encoder": None},
            "stages": [mntp, {"base_stage": "pairs", "steps": 7}],
        },
    )
    cfg = load_config(child, ["stages.1.batch_size=16"])  # --set applies after the merge
    assert [s.objective for s in cfg.stages] == ["mntp", "contrastive"]
    pairs = cfg.stages[1]
    assert (pairs.steps, pairs.batch_size, pairs.name) == (7, 16, "pairs")
    assert pairs.data[0].instruction == "Given a word, retrieve its definition"


def test_a_child_that_changes_nothing_is_the_same_run(tmp_path):
    base = _write(tmp_path / "base.yaml", BASE)
    child = _write(tmp_path / "child.yaml", {"base": "base.yaml"})
    assert config_fingerprint(load_config(child)) == config_fingerprint(load_config(base))


@pytest.mark.parametrize(
    "child, message",
    [
        ({"base": "missing.yaml"}, "config file not found: .*missing.yaml \\(the base of"),
        ({"base": "child.yaml"}, "leads back to itself"),
        ({"base": 3}, "base must be the path of another config file"),
        (
            {"base": "base.yaml", "stages": [{"base_stage": "nope"}]},
            "base_stage 'nope' is not a stage of the base; its stages: \\['pairs'\\]",
        ),
    ],
)
def test_bad_bases_are_refused_with_the_file(tmp_path, child, message):
    _write(tmp_path / "base.yaml", BASE)
    path = _write(tmp_path / "child.yaml", child)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_cycle_of_two_files_is_refused(tmp_path):
    _write(tmp_path / "a.yaml", {**BASE, "base": "b.yaml"})
    _write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ConfigError, match="leads back to itself"):
        load_config(tmp_path / "a.yaml")


def _data_seed(cfg, index: int) -> int:
    stage = cfg.stages[index]
    return cfg.seed + 1000 * index if stage.data_seed is None else stage.data_seed


def test_the_reproduction_configs_share_the_flagship_stage():
    """Every method of configs/repro/ ends with the flagship's distillation stage, unchanged, drawing the
    same batches (its data seed is the flagship's, wherever the stage stands in the run)."""
    from dataclasses import replace

    from dec2vec.train.objectives.registry import get_objective

    flagship_cfg = load_config(ROOT / "configs" / "causal2vec-distill.yaml")
    flagship = flagship_cfg.stages[-1]
    for path in sorted((ROOT / "configs" / "repro").glob("*.yaml")):
        cfg = load_config(path)
        if cfg.validate_every:  # validation ranks held-out pairs: a run of text stages alone has none
            assert any(get_objective(s.objective).kind != "text" for s in cfg.stages), path.name
        if path.stem == "unimae":  # the unsupervised half of unimae-supervised
            assert [s.objective for s in cfg.stages] == ["unimae"]
            continue
        last = len(cfg.stages) - 1
        assert replace(cfg.stages[-1], data_seed=None) == flagship, path.name
        assert _data_seed(cfg, last) == _data_seed(flagship_cfg, 0), path.name
        assert cfg.seed == 0 and cfg.model.backbone == "smollm2-135m-instruct", path.name


def test_every_shipped_config_loads():
    from dec2vec.train.preflight import check_settings

    paths = sorted((ROOT / "configs").rglob("*.yaml"))
    assert len(paths) >= 20
    for path in paths:
        check_settings(load_config(path), 1)  # its objectives known and trained by its recipe (no file read)


def test_an_init_under_dec2vec_home_that_is_not_trained_yet_is_named(tmp_path, monkeypatch, capsys):
    from dec2vec.cli import main

    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    path = ROOT / "configs" / "repro" / "unimae-supervised.yaml"
    assert main(["train", str(path), "--set", f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert f"model.init: no model folder at {tmp_path / 'home' / 'runs' / 'repro' / 'unimae' / 'model'}" in err
