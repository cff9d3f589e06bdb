"""Training data and config: formats, file:line errors, --skip-bad, streaming resume, mixtures, overrides."""

from __future__ import annotations

import json

import pytest

from dec2vec.cli import main
from dec2vec.errors import ConfigError, InputError
from dec2vec.train.config import DataSpec, TrainConfig, load_config
from dec2vec.train.config_files import apply_override
from dec2vec.train.data import JsonlStream, MixtureLoader
from dec2vec.train.preflight import preflight


def _lines(path, objs):
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


def test_pair_triplet_and_text_formats(tmp_path):
    f = _lines(
        tmp_path / "p.jsonl",
        [
            {"query": "q1", "positive": "p1"},
            {"query": "q2", "positive": "p2", "negative": "n2"},
            {"query": "q3", "positive": "p3", "negatives": ["n3a", "n3b"]},
        ],
    )
    s = JsonlStream(f, "pairs", buffer=10, seed=0)
    recs = sorted((s.next() for _ in range(3)), key=lambda r: r.query)
    assert [r.negatives for r in recs] == [(), ("n2",), ("n3a", "n3b")]
    t = _lines(tmp_path / "t.jsonl", [{"text": "hello"}, {"body": "x"}])
    s = JsonlStream(t, "text", text_field="body", buffer=10)
    with pytest.raises(InputError, match=r"t\.jsonl:1: missing field 'body'"):
        s.next()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"query": "q"}', "missing field 'positive'"),
        ('{"query": "", "positive": "p"}', "field 'query' must be a non-empty string"),
        ('{"query": "q", "positive": "p", "negatives": "n"}', "field 'negatives' must be a list"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, message):
    f = _lines(tmp_path / "d.jsonl", [{"query": "a", "positive": "b"}, "", line])
    s = JsonlStream(f, "pairs", buffer=100)
    with pytest.raises(InputError, match=rf"d\.jsonl:3: {message}"):
        s.next()


def test_skip_bad_counts_and_keeps_the_good(tmp_path):
    f = _lines(tmp_path / "d.jsonl", [{"text": "a"}, "{oops", {"text": "b"}, {"nope": 1}, {"text": "c"}])
    s = JsonlStream(f, "text", buffer=100, skip_bad=True)
    assert sorted(s.next().text for _ in range(3)) == ["a", "b", "c"]
    assert s.skipped == 2
    bad = _lines(tmp_path / "bad.jsonl", ["{x", "{y"])
    with pytest.raises(InputError, match="no usable records"):
        JsonlStream(bad, "text", skip_bad=True).next()


def test_stream_resumes_at_the_same_record_across_blocks_and_epochs(tmp_path):
    f = _lines(tmp_path / "d.jsonl", [{"text": f"t{i}"} for i in range(23)])
    a = JsonlStream(f, "text", buffer=5, seed=3)
    whole = [a.next().text for _ in range(60)]  # crosses blocks and wraps into later epochs
    assert sorted(whole[:23]) == sorted(f"t{i}" for i in range(23))  # one epoch = every record once
    assert whole[:23] != whole[23:46]  # a new epoch reshuffles
    for k in (0, 4, 5, 12, 23, 31):
        b = JsonlStream(f, "text", buffer=5, seed=3)
        for _ in range(k):
            b.next()
        c = JsonlStream(f, "text", buffer=5, seed=3)
        c.load_state_dict(json.loads(json.dumps(b.state_dict())))
        assert [c.next().text for _ in range(60 - k)] == whole[k:]


def test_each_batch_comes_from_one_source_and_weights_matter(tmp_path):
    a = _lines(tmp_path / "a.jsonl", [{"query": f"a{i}", "positive": "x"} for i in range(50)])
    b = _lines(tmp_path / "b.jsonl", [{"query": f"b{i}", "positive": "x"} for i in range(50)])
    specs = [DataSpec(path=str(a), weight=3.0), DataSpec(path=str(b), weight=1.0, instruction="find")]
    loader = MixtureLoader(specs, "pairs", seed=0, buffer=100, skip_bad=False)
    picked = []
    for step in range(200):
        spec, recs = loader.batch(step, 4)
        assert {r.query[0] for r in recs} == {spec.name[0]}
        picked.append(spec.name)
    assert 0.6 < picked.count("a") / 200 < 0.9
    same = MixtureLoader(specs, "pairs", seed=0, buffer=100, skip_bad=False)
    assert [same.pick(s).name for s in range(200)] == picked  # depends only on (seed, step)


def test_missing_file_and_duplicate_names(tmp_path):
    with pytest.raises(InputError, match="training data not found"):
        JsonlStream(tmp_path / "nope.jsonl", "text")
    f = _lines(tmp_path / "d.jsonl", [{"text": "a"}])
    with pytest.raises(InputError, match="distinct names"):
        MixtureLoader([DataSpec(path=str(f)), DataSpec(path=str(f))], "text", seed=0, buffer=10, skip_bad=False)


def test_config_validation_and_overrides(tmp_path):
    base = {"model": {"recipe": "causal2vec"}, "stages": [{"objective": "contrastive", "data": [{"path": "x"}]}]}
    cfg = TrainConfig.from_dict(base)
    assert cfg.stages[0].name == "contrastive" and cfg.lora.enabled
    with pytest.raises(ConfigError, match=r"stages\.0: unknown key\(s\) \['stepz'\]"):
        TrainConfig.from_dict({**base, "stages": [{**base["stages"][0], "stepz": 3}]})
    with pytest.raises(ConfigError, match="unknown objective 'mlm'"):  # the run's preflight reads the registry
        preflight(TrainConfig.from_dict({**base, "stages": [{"objective": "mlm", "data": [{"path": "x"}]}]}), 1)
    with pytest.raises(ConfigError, match=r"stages\.0\.lr: expected a number"):
        TrainConfig.from_dict({**base, "stages": [{**base["stages"][0], "lr": "fast"}]})
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "model: {recipe: causal2vec}\nstages:\n  - objective: contrastive\n    data: [{path: x}]\n    lr: 1e-4\n"
    )
    cfg = load_config(yaml_file, ["stages.0.steps=7", "lora.enabled=false", "stages.0.data.0.instruction=Find it"])
    assert cfg.stages[0].steps == 7 and cfg.stages[0].lr == 1e-4 and not cfg.lora.enabled
    assert cfg.stages[0].data[0].instruction == "Find it"
    with pytest.raises(ConfigError, match="not an index"):
        apply_override({"stages": []}, "stages.3.steps=1")
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "steps")


def test_cli_train_reports_config_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {recipe: nope}\nstages: []\n")
    assert main(["train", str(bad)]) == 2
    assert "no stages" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("shuffle_buffer=0", "shuffle_buffer must be >= 1"),
        ("log_every=0", "log_every must be >= 1"),
        ("keep_checkpoints=0", "keep_checkpoints must be >= 1"),
        ("stages.0.dropout=1.5", r"stages\.0: dropout must be in \[0, 1\)"),
        ("stages.0.warmup_steps=-1", r"stages\.0: warmup_steps"),
        ("lora.r=0", "lora: lora needs r >= 1"),
    ],
)
def test_out_of_range_settings_are_refused_with_their_key(tmp_path, override, message):
    f = tmp_path / "c.yaml"
    f.write_text("model: {recipe: mean}\nstages:\n  - {objective: contrastive, data: [{path: x}]}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(f, [override])
