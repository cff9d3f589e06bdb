"""Faults and bad input across every command: one ``dec2vec: error:`` line, exit 2, nothing left behind.

Issue 29's classes, each with cases beyond the one reported: operating-system faults (injected
in-process: permission, disk full, read-only, not a directory), damaged model folders (tiny models
saved here, then truncated), device mistakes, malformed JSON/YAML/config, outputs checked before
the work, an output that is an input, standard input, DEC2VEC_HOME, and damaged indexes. Unlike
``test_cli_bad_input.py`` these cases may load a model (a tiny one): the fault often lies in it.
Signals need a process of their own and are tested with subprocesses at the end.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dec2vec.cli import main
from tests.unit.test_cli_bad_input import assert_one_line_error, run_cli, tree

HAS_CUDA = torch.cuda.is_available()
PAIRS = '{"query": "the cat", "positive": "a cat sat"}\n{"query": "the dog", "positive": "a dog ran"}\n'


# ------------------------------------------------------------------------------------- tiny models


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_backbone, tiny_encoder) -> dict[str, str]:
    """Saved tiny models, whole and damaged in each way a copy can be damaged."""
    from safetensors.torch import save_file

    from dec2vec import Embedder

    root = tmp_path_factory.mktemp("models")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    Embedder.from_recipe("mean", tiny_backbone, device="cpu").save_pretrained(root / "mean")
    Embedder.from_recipe("causal2vec", tiny_backbone, encoder=tiny_encoder, device="cpu").save_pretrained(root / "c2v")
    torch.set_num_threads(n)

    def variant(name: str, base: str) -> Path:
        shutil.copytree(root / base, root / name)
        return root / name

    def truncate(path: Path, keep: int) -> None:
        path.write_bytes(path.read_bytes()[:keep])

    truncate(variant("heads_cut", "c2v") / "heads.safetensors", 100)
    truncate(variant("backbone_cut", "mean") / "backbone" / "model.safetensors", 5000)
    truncate(variant("encoder_cut", "c2v") / "encoder" / "model.safetensors", 3000)
    (variant("json_cut", "mean") / "dec2vec.json").write_text('{"recipe": "mean",')
    (variant("json_list", "mean") / "dec2vec.json").write_text("[1, 2]")
    (variant("json_binary", "mean") / "dec2vec.json").write_bytes(b"\xff\xfe\x00\x81")
    (variant("json_empty", "mean") / "dec2vec.json").write_text("{}")
    described = json.loads((root / "mean" / "dec2vec.json").read_text())
    (variant("json_types", "mean") / "dec2vec.json").write_text(json.dumps({**described, "max_length": "long"}))
    save_file({"x": torch.zeros(2)}, str(variant("heads_other", "c2v") / "heads.safetensors"))
    adapter = variant("adapter_cut", "mean") / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 2, "target_modules": ["q_proj"], "task_type": None})
    )
    (adapter / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00")
    cfg = json.loads((root / "mean" / "dec2vec.json").read_text())
    (root / "adapter_cut" / "dec2vec.json").write_text(json.dumps({**cfg, "adapter": "adapter"}))
    return {p.name: str(p) for p in root.iterdir()}


@pytest.fixture
def paths(tmp_path, monkeypatch, models, tiny_backbone) -> dict[str, str]:
    """The working folder of a case: inputs, configs, an index, all before the case runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEC2VEC_DEBUG", raising=False)
    (tmp_path / "home").mkdir()
    (tmp_path / "good.txt").write_text("the cat\nthe dog\n")
    (tmp_path / "good.jsonl").write_text('{"text": "the cat", "id": 1}\n{"text": "the dog", "id": 2}\n')
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "pairs.train.jsonl").write_text(PAIRS)
    (tmp_path / "pairs.valid.jsonl").write_text(PAIRS)
    config = (
        "model: {recipe: mean}\noutput_dir: runs/x\n"
        "stages:\n  - objective: contrastive\n    data: [{path: pairs.train.jsonl}]\n    steps: 1\n"
    )
    (tmp_path / "train.yaml").write_text(config)
    (tmp_path / "home_out.yaml").write_text(config.replace("runs/x", "$DEC2VEC_HOME/run"))
    tiny = config.replace("{recipe: mean}", f"{{recipe: mean, backbone: {tiny_backbone}}}").replace(
        "runs/x", "runs/a/b"
    )
    (tmp_path / "binary.train.jsonl").write_bytes(b"\x89PNG\xff\xfe\n\x00\x01")
    (tmp_path / "list.train.jsonl").write_text("[1, 2]\n")
    (tmp_path / "binary_data.yaml").write_text(tiny.replace("pairs.train.jsonl", "binary.train.jsonl"))
    (tmp_path / "list_data.yaml").write_text(tiny.replace("pairs.train.jsonl", "list.train.jsonl"))
    damaged = '{"format": 1, "model": {}, "model_ref": "mean", "chunking": 5}'
    for name, meta in (("db_list", "[1]"), ("db_cut", '{"format": '), ("db_binary", None), ("db_chunking", damaged)):
        (tmp_path / name).mkdir()
        target = tmp_path / name / "dec2vec-index.json"
        target.write_bytes(b"\xff\x00") if meta is None else target.write_text(meta)
    os.symlink("good.jsonl", tmp_path / "link.jsonl")
    os.link(tmp_path / "good.jsonl", tmp_path / "hard.jsonl")
    return {**models, "cfg": str(tmp_path / "train.yaml")}


# ----------------------------------------------------------------------------------- fault injection


def _fault(code: int, path: object) -> OSError:
    return OSError(code, os.strerror(code), str(path))


def deny_reading(monkeypatch, name: str, code: int = errno.EACCES) -> None:
    """Opening ``name`` for reading fails with ``code``, as a file this user may not read does."""
    real = io.open

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file).name == name and "r" in mode:
            raise _fault(code, file)
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)


def fail_writes(monkeypatch, code: int) -> None:
    """Every embeddings block written fails with ``code``: a disk that fills, or turns read-only."""
    from dec2vec import io as dio

    def fail(self, *args, **kwargs):
        raise _fault(code, self.tmp)

    monkeypatch.setattr(dio.EmbeddingWriter, "write", fail)


def fail_probe(monkeypatch, code: int) -> None:
    """Creating any file fails with ``code`` (a read-only mount, a full disk), seen by the up-front probe."""
    import tempfile

    def fail(*args, dir=None, **kwargs):
        raise _fault(code, dir)

    monkeypatch.setattr(tempfile, "mkstemp", fail)


def fail_index_commit(monkeypatch, code: int | None) -> None:
    """The index's first commit fails: with an OSError ``code``, or (None) as pyarrow does on bad data."""
    from dec2vec.search import store

    def fail(self, *args, **kwargs):
        if code is None:
            import pyarrow as pa

            raise pa.ArrowInvalid("Invalid: column embedding: unexpected null")
        raise _fault(code, self.path / "chunks.lance")

    monkeypatch.setattr(store.Store, "add_chunks", fail)


def stdin_of(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


INJECT = {
    "deny:good.txt": lambda mp: deny_reading(mp, "good.txt"),
    "deny:train.yaml": lambda mp: deny_reading(mp, "train.yaml"),
    "eio:good.jsonl": lambda mp: deny_reading(mp, "good.jsonl", errno.EIO),
    "enospc": lambda mp: fail_writes(mp, errno.ENOSPC),
    "erofs": lambda mp: fail_writes(mp, errno.EROFS),
    "edquot": lambda mp: fail_writes(mp, errno.EDQUOT),
    "probe:erofs": lambda mp: fail_probe(mp, errno.EROFS),
    "probe:enospc": lambda mp: fail_probe(mp, errno.ENOSPC),
    "index:enospc": lambda mp: fail_index_commit(mp, errno.ENOSPC),
    "index:arrow": lambda mp: fail_index_commit(mp, None),
    "stdin:empty": lambda mp: stdin_of(mp, b""),
    "stdin:binary": lambda mp: stdin_of(mp, b"caf\xe9\n"),
    "stdin:bad-jsonl": lambda mp: stdin_of(mp, b'{"text": "ok"}\n{"text": \n'),
    "stdin:no-field": lambda mp: stdin_of(mp, b'{"body": "ok"}\n'),
    "home:file": lambda mp: mp.setenv("DEC2VEC_HOME", "a_file"),
    "home:under-file": lambda mp: mp.setenv("DEC2VEC_HOME", "a_file/home"),
}

# (id, injected fault or None, argv, text the one line must hold). {name} is a model of `models`.
CASES = [
    # --- operating-system faults
    (
        "embed-input-unreadable",
        "deny:good.txt",
        ["embed", "-m", "{mean}", "--input", "good.txt", "-o", "o.npy"],
        "'good.txt': cannot read it (Permission denied)",
    ),
    (
        "embed-input-unreadable-json",
        "deny:good.txt",
        ["embed", "-m", "{mean}", "--input", "good.txt", "--json"],
        "Permission denied",
    ),
    (
        "embed-input-io-error",
        "eio:good.jsonl",
        ["embed", "-m", "{mean}", "--input", "good.jsonl", "-o", "o.npy"],
        "Input/output error",
    ),
    (
        "embed-disk-full-npy",
        "enospc",
        ["embed", "-m", "{mean}", "--input", "good.txt", "-o", "o.npy"],
        "no space left on the device",
    ),
    (
        "embed-disk-full-jsonl",
        "enospc",
        ["embed", "-m", "{mean}", "--input", "good.txt", "-o", "o.jsonl"],
        "no space left on the device",
    ),
    (
        "embed-disk-full-texts",
        "enospc",
        ["embed", "-m", "{mean}", "the cat", "-o", "o.npy"],
        "no space left on the device",
    ),
    ("embed-quota", "edquot", ["embed", "-m", "{mean}", "--input", "good.txt", "-o", "o.npy"], "quota"),
    (
        "embed-read-only-mid-write",
        "erofs",
        ["embed", "-m", "{mean}", "--input", "good.txt", "-o", "o.npy"],
        "Read-only file system",
    ),
    ("embed-read-only-folder", "probe:erofs", ["embed", "-m", "{mean}", "x", "-o", "o.npy"], "cannot create files in"),
    ("embed-full-disk-probe", "probe:enospc", ["embed", "-m", "{mean}", "x", "-o", "o.npy"], "No space left on device"),
    (
        "index-read-only",
        "probe:erofs",
        ["index", "build", "--db", "db", "--input", "good.txt", "-m", "{mean}"],
        "Read-only file system",
    ),
    (
        "index-disk-full",
        "index:enospc",
        ["index", "build", "--db", "db", "--input", "good.txt", "-m", "{mean}", "-q"],
        "no space left on the device",
    ),
    (
        "index-arrow-error",
        "index:arrow",
        ["index", "build", "--db", "db", "--input", "good.txt", "-m", "{mean}", "-q"],
        "pyarrow failed on the index at db",
    ),
    (
        "train-config-unreadable",
        "deny:train.yaml",
        ["train", "train.yaml"],
        "train.yaml: cannot read it (Permission denied)",
    ),
    (
        "validate-config-unreadable",
        "deny:train.yaml",
        ["validate", "train.yaml", "--models", "mean"],
        "Permission denied",
    ),
    (
        "eval-read-only-out",
        "probe:erofs",
        ["eval", "--models", "mean", "--baselines", "none", "--out", "r"],
        "Read-only",
    ),
    ("bench-read-only-out", "probe:erofs", ["bench", "--recipes", "mean", "--out", "b"], "Read-only"),
    ("data-read-only-home", "probe:erofs", ["data", "build", "--only", "fortunes"], "DEC2VEC_HOME"),
    # --- damaged model folders
    (
        "embed-heads-truncated",
        None,
        ["embed", "-m", "{heads_cut}", "x"],
        "heads.safetensors: a weights file is damaged or truncated",
    ),
    ("embed-heads-of-another-model", None, ["embed", "-m", "{heads_other}", "x"], "does not hold this recipe's heads"),
    ("embed-backbone-truncated", None, ["embed", "-m", "{backbone_cut}", "x"], "backbone: a weights file is damaged"),
    ("embed-encoder-truncated", None, ["embed", "-m", "{encoder_cut}", "x"], "encoder: a weights file is damaged"),
    ("embed-adapter-truncated", None, ["embed", "-m", "{adapter_cut}", "x"], "adapter: a weights file is damaged"),
    (
        "embed-config-truncated",
        None,
        ["embed", "-m", "{json_cut}", "x"],
        "dec2vec.json: damaged model description, not valid JSON",
    ),
    (
        "embed-config-list",
        None,
        ["embed", "-m", "{json_list}", "x"],
        "dec2vec.json: damaged model description, not a JSON object",
    ),
    ("embed-config-binary", None, ["embed", "-m", "{json_binary}", "x"], "damaged model description"),
    ("embed-config-empty", None, ["embed", "-m", "{json_empty}", "x"], "recipe, backbone missing"),
    ("embed-config-wrong-type", None, ["embed", "-m", "{json_types}", "x"], "max_length is str 'long'"),
    ("export-config-wrong-type", None, ["export", "{json_types}", "--format", "onnx", "--out", "o"], "max_length"),
    ("info-heads-truncated", None, ["info", "{heads_cut}"], "damaged or truncated"),
    ("info-config-truncated", None, ["info", "{json_cut}"], "damaged model description"),
    (
        "index-model-truncated",
        None,
        ["index", "build", "--db", "db", "--input", "good.txt", "-m", "{heads_cut}"],
        "damaged or truncated",
    ),
    ("serve-model-truncated", None, ["serve", "-m", "{backbone_cut}", "--port", "0"], "damaged or truncated"),
    (
        "eval-config-truncated",
        None,
        ["eval", "--models", "{json_cut}", "--baselines", "none"],
        "damaged model description",
    ),
    (
        "validate-model-truncated",
        None,
        ["validate", "{cfg}", "--models", "{heads_cut}", "--n", "2"],
        "damaged or truncated",
    ),
    # --- devices (checked as the flag is parsed, before anything loads)
    ("embed-device-unknown", None, ["embed", "--device", "foo", "x"], "argument --device: unknown device 'foo'"),
    ("embed-device-bad-index", None, ["embed", "--device", "cuda:x", "x"], "unknown device 'cuda:x'"),
    ("embed-device-meta", None, ["embed", "--device", "meta", "x"], "dec2vec runs on cpu, cuda, cuda:N or mps"),
    ("info-device-unknown", None, ["info", "mean", "--device", "gpu"], "unknown device 'gpu'"),
    ("eval-device-unknown", None, ["eval", "--device", "foo"], "unknown device 'foo'"),
    ("validate-device-unknown", None, ["validate", "train.yaml", "--models", "mean", "--device", "tpu"], "device"),
    ("bench-device-unknown", None, ["bench", "--device", "foo"], "unknown device 'foo'"),
    (
        "index-device-unknown",
        None,
        ["index", "build", "--db", "db", "--input", "good.txt", "--device", "x"],
        "unknown device",
    ),
    ("search-device-unknown", None, ["search", "--db", "db", "cats", "--device", "foo"], "unknown device"),
    ("ask-device-unknown", None, ["ask", "--db", "db", "why?", "--device", "foo"], "unknown device"),
    ("serve-device-unknown", None, ["serve", "--device", "foo"], "unknown device"),
    ("embed-cuda-without-cuda", None, ["embed", "--device", "cuda", "x"], "use --device cpu"),
    ("serve-cuda-without-cuda", None, ["serve", "--device", "cuda:0"], "use --device cpu"),
    (
        "embed-int8-with-bf16",
        None,
        ["embed", "-m", "{mean}", "--quantize", "int8", "--dtype", "bf16", "x"],
        "--quantize int8 needs float32",
    ),
    (
        "eval-int8-with-bf16",
        None,
        ["eval", "--models", "mean", "--baselines", "none", "--quantize", "int8", "--dtype", "bf16"],
        "--quantize int8 needs float32",
    ),
    # --- malformed structured input
    ("train-binary-config", None, ["train", "binary.yaml"], "binary.yaml: not a text (YAML) file"),
    ("train-config-is-list", None, ["train", "list.yaml"], "the top level must be a mapping"),
    ("train-binary-data", None, ["train", "binary_data.yaml", "--no-progress"], "binary.train.jsonl:1: not valid"),
    ("train-data-not-objects", None, ["train", "list_data.yaml", "--no-progress"], "expected a JSON object"),
    (
        "index-db-deep-model-fails",
        None,
        ["index", "build", "--db", "x/y/db", "--input", "good.txt", "-m", "{json_cut}"],
        "damaged",
    ),
    (
        "train-set-bad-yaml",
        None,
        ["train", "train.yaml", "--set", "stages.0.steps=[1"],
        "--set stages.0.steps: the value '[1' is not valid YAML",
    ),
    ("train-set-bad-yaml-mapping", None, ["train", "train.yaml", "--set", "model={{recipe: mean"], "is not valid YAML"),
    ("validate-binary-config", None, ["validate", "binary.yaml", "--models", "mean"], "not a text (YAML) file"),
    ("eval-claims-list", None, ["eval", "--claims", "list.json"], "'list.json' is not a results.json"),
    ("eval-claims-binary", None, ["eval", "--claims", "binary.json"], "'binary.json' is not a results.json"),
    ("eval-compare-list", None, ["eval", "--compare", "list.json", "list.json"], "is not a results.json"),
    ("bench-quality-list", None, ["bench", "--quality", "fp32=list.json", "bf16=list.json"], "is not a results.json"),
    ("index-info-meta-list", None, ["index", "info", "--db", "db_list"], "not a JSON object"),
    ("index-info-meta-truncated", None, ["index", "info", "--db", "db_cut"], "unreadable index description"),
    ("search-meta-list", None, ["search", "--db", "db_list", "cats"], "not a JSON object"),
    ("search-meta-binary", None, ["search", "--db", "db_binary", "cats"], "unreadable index description"),
    ("ask-meta-list", None, ["ask", "--db", "db_list", "why?"], "not a JSON object"),
    ("search-meta-damaged-field", None, ["search", "--db", "db_chunking", "cats"], "damaged index description"),
    ("index-build-meta-list", None, ["index", "build", "--db", "db_list", "--input", "good.txt"], "not a JSON object"),
    # --- every output, model name and path checked before the work
    (
        "bench-out-under-file",
        None,
        ["bench", "--recipes", "mean", "--out", "a_file/b"],
        "--out a_file/b: a_file is a file",
    ),
    ("bench-write-texts-under-file", None, ["bench", "--write-texts", "a_file/t.jsonl"], "a_file is a file"),
    ("bench-texts-missing", None, ["bench", "--texts", "none.jsonl"], "'none.jsonl' does not exist"),
    (
        "bench-backbone-missing",
        None,
        ["bench", "--backbone", "./no/model"],
        "--backbone: model path './no/model' does not exist",
    ),
    (
        "validate-out-under-file",
        None,
        ["validate", "{cfg}", "--models", "mean", "--out", "a_file/v.json"],
        "a_file is a file",
    ),
    ("validate-unknown-second-model", None, ["validate", "{cfg}", "--models", "mean", "nope"], "'nope' is neither"),
    ("validate-unknown-named-model", None, ["validate", "{cfg}", "--models", "a=mean", "b=./none"], "'./none'"),
    ("data-out-under-file", None, ["data", "build", "--out", "a_file/data"], "--out a_file/data: a_file is a file"),
    ("data-unknown-corpus", None, ["data", "build", "--only", "nope"], "unknown corpus 'nope'"),
    ("eval-unknown-model", None, ["eval", "--models", "nope", "--baselines", "none"], "'nope' is neither"),
    ("eval-unknown-second-model", None, ["eval", "--models", "mean", "x=./none", "--baselines", "none"], "'./none'"),
    ("eval-unknown-baseline", None, ["eval", "--baselines", "nope"], "'nope' is neither"),
    # --- no output over an input
    (
        "embed-output-is-input",
        None,
        ["embed", "-m", "{mean}", "--input", "good.jsonl", "-o", "good.jsonl"],
        "is the input file",
    ),
    ("embed-output-is-input-dot", None, ["embed", "--input", "good.jsonl", "-o", "./good.jsonl"], "is the input file"),
    ("embed-output-is-hard-link", None, ["embed", "--input", "good.jsonl", "-o", "hard.jsonl"], "is the input file"),
    ("embed-output-is-symlink", None, ["embed", "--input", "link.jsonl", "-o", "good.jsonl"], "is the input file"),
    (
        "validate-out-is-config",
        None,
        ["validate", "train.yaml", "--models", "mean", "--out", "train.yaml"],
        "is the input file",
    ),
    (
        "bench-write-texts-is-texts",
        None,
        ["bench", "--texts", "good.jsonl", "--write-texts", "good.jsonl"],
        "is the input",
    ),
    # --- standard input
    ("embed-stdin-empty", "stdin:empty", ["embed", "-m", "{mean}", "-"], "<stdin>: no texts"),
    ("embed-stdin-not-utf8", "stdin:binary", ["embed", "-m", "{mean}", "-"], "<stdin>:1: not valid UTF-8"),
    (
        "embed-stdin-bad-jsonl",
        "stdin:bad-jsonl",
        ["embed", "-m", "{mean}", "--input", "-", "-o", "o.npy"],
        "<stdin>:2: malformed JSON",
    ),
    (
        "embed-stdin-no-field",
        "stdin:no-field",
        ["embed", "-m", "{mean}", "--input", "-", "--json"],
        "<stdin>:1: no 'text' field",
    ),
    # --- DEC2VEC_HOME
    (
        "home-is-file-eval",
        "home:file",
        ["eval", "--models", "mean", "--baselines", "none"],
        "DEC2VEC_HOME=a_file is a file",
    ),
    ("home-is-file-data", "home:file", ["data", "build", "--only", "fortunes"], "DEC2VEC_HOME=a_file is a file"),
    ("home-under-file-models", "home:under-file", ["models", "list"], "lies under the file a_file"),
    ("home-under-file-train", "home:under-file", ["train", "home_out.yaml"], "lies under the file a_file"),
    # --- more of the same kind
    ("models-pull-unknown", None, ["models", "pull", "nope"], "nope"),
    ("serve-host-unresolvable", None, ["serve", "--host", "no-such-host.invalid", "--port", "0"], "cannot resolve"),
    ("search-db-is-file", None, ["search", "--db", "a_file", "cats"], "no index at"),
]


def test_the_table_covers_every_command():
    commands = {c[2][0] for c in CASES}
    assert len(CASES) >= 60
    assert commands >= {"embed", "info", "train", "validate", "eval", "bench", "data", "models", "index", "search"}
    assert commands >= {"ask", "serve"}


@pytest.mark.parametrize("fault,argv,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fault_is_one_line_and_leaves_nothing(capsys, monkeypatch, tmp_path, paths, one_thread, fault, argv, match):
    if "cuda" in " ".join(argv) and HAS_CUDA:
        pytest.skip("this torch has CUDA")
    if fault and fault.startswith("index:"):
        pytest.importorskip("lancedb")
    before = tree(tmp_path)
    if fault:
        INJECT[fault](monkeypatch)
    code, out, err = run_cli(capsys, [a.format(**paths) for a in argv])
    assert_one_line_error(code, out, err, match)
    assert tree(tmp_path) == before  # no output, temp file, probe or half-built index left behind


# ------------------------------------------------------------------------------- the boundary itself


def test_a_bug_keeps_its_traceback(capsys, monkeypatch, paths):
    """Only the listed failures are translated: anything else is a bug, and shows as one."""
    import dec2vec.commands.embed as embed

    def bug(args):
        raise KeyError("a bug")

    monkeypatch.setattr(embed, "cmd_recipes", bug)
    from dec2vec.cli import build_parser

    args = build_parser().parse_args(["recipes"])
    args.func = bug
    monkeypatch.setattr("dec2vec.cli.build_parser", lambda: _parser_returning(args))
    with pytest.raises(KeyError):
        main(["recipes"])


def _parser_returning(args):
    class P:
        def parse_args(self, argv):
            return args

    return P()


def test_debug_shows_the_traceback(capsys, monkeypatch, paths):
    monkeypatch.setenv("DEC2VEC_DEBUG", "1")
    from dec2vec.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["train", "binary.yaml"])


def test_explain_says_where_for_os_errors():
    from dec2vec.errors import explain

    assert explain(OSError(errno.ENOTDIR, "Not a directory", "a/b")) == "Not a directory: a/b"
    assert explain(PermissionError(errno.EACCES, "Permission denied", "x")) == "Permission denied: x"
    assert explain(IsADirectoryError(errno.EISDIR, "Is a directory", "d")) == "Is a directory: d"
    assert "disk full" in explain(OSError(errno.ENOSPC, "No space left on device", "f"))
    assert explain(OSError("no errno")) is None  # not an OS fault we know: a bug until shown otherwise
    assert explain(ValueError("x")) is None and explain(AttributeError("x")) is None


# ------------------------------------------------------------------------------------ what is kept


def test_a_build_stopped_before_its_first_commit_leaves_no_empty_index(capsys, monkeypatch, paths, tmp_path):
    """Ctrl-C (or a full disk) after the index description is written but before any document is
    committed: the folder is removed, so no `search` later calls it "empty"."""
    pytest.importorskip("lancedb")
    from dec2vec.search import store

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store.Store, "add_chunks", interrupt)
    code, _, _ = run_cli(capsys, ["index", "build", "--db", "db", "--input", "good.txt", "-m", paths["mean"], "-q"])
    assert code == 130 and not (tmp_path / "db").exists()


def test_a_disk_full_build_keeps_the_index_and_the_next_build_completes(capsys, monkeypatch, paths, tmp_path):
    pytest.importorskip("lancedb")
    from dec2vec.search import store

    base = ["index", "build", "--db", "db", "-m", paths["mean"], "-q"]
    assert run_cli(capsys, [*base, "--input", "good.txt"])[0] == 0
    (tmp_path / "more.txt").write_text("a bird in the sky\n")
    real = store.Store.add_chunks
    monkeypatch.setattr(store.Store, "add_chunks", lambda self, *a, **k: (_ for _ in ()).throw(_fault(28, "db")))
    code, out, err = run_cli(capsys, [*base, "--input", "good.txt", "more.txt"])
    assert_one_line_error(code, out, err, "no space left on the device")
    monkeypatch.setattr(store.Store, "add_chunks", real)
    assert run_cli(capsys, [*base, "--input", "good.txt", "more.txt"])[0] == 0
    code, out, _ = run_cli(capsys, ["index", "info", "--db", "db", "--json"])
    assert code == 0 and json.loads(out)["documents"] == 2


def test_stdin_as_a_file(capsys, monkeypatch, paths, tmp_path):
    """`dec2vec embed -` and `--input -` read standard input: lines, or JSONL when it starts with {."""
    stdin_of(monkeypatch, b"the cat\nthe dog\n")
    code, out, _ = run_cli(capsys, ["embed", "-m", paths["mean"], "-"])
    assert code == 0 and len(json.loads(out)) == 2
    stdin_of(monkeypatch, b'{"text": "the cat"}\n{"text": "a dog"}\n{"text": "sun"}\n')
    code, _, _ = run_cli(capsys, ["embed", "-m", paths["mean"], "--input", "-", "-o", "s.npy"])
    import numpy as np

    assert code == 0 and np.load(tmp_path / "s.npy").shape[0] == 3


def test_a_later_run_removes_a_killed_runs_temp_files(capsys, paths, tmp_path):
    """kill -9 leaves .X.npy.XXXXXXXX.npy; writing another output in the same folder removes it,
    while a user's own hidden file is kept."""
    stale = tmp_path / ".X.npy.ab12cd34.npy"
    stale.write_bytes(b"half")
    mine = tmp_path / ".notes.ab12cd34.txt"
    mine.write_text("mine")
    old = time.time() - 3600
    for p in (stale, mine):
        os.utime(p, (old, old))
    assert run_cli(capsys, ["embed", "-m", paths["mean"], "the cat", "-o", "Y.npy"])[0] == 0
    assert not stale.exists() and mine.exists() and (tmp_path / "Y.npy").is_file()


# ------------------------------------------------------------------------------------------ signals


def _embed_until_temp(tmp_path: Path, model: str, sig: int) -> tuple[int, str, list[str]]:
    (tmp_path / "many.txt").write_text("".join(f"the cat sat on the mat {i}\n" for i in range(200_000)))
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dec2vec", "embed", "-m", model, "--input", "many.txt", "-o", "X.npy"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".X.npy.") for p in tmp_path.iterdir()):
        time.sleep(0.1)
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1].decode()
    return proc.returncode, err, sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_removes_the_temp_file(tmp_path, models, sig, code):
    returncode, err, left = _embed_until_temp(tmp_path, models["mean"], sig)
    assert returncode == code, err
    assert "Traceback" not in err, err
    assert left == ["many.txt"], left


def test_serve_port_0_prints_the_port_it_got(models):
    """`serve --port 0` binds a free port and says which (it printed ":0" before), then stops on SIGTERM."""
    pytest.importorskip("uvicorn")
    import re
    import urllib.request

    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dec2vec", "serve", "-m", models["mean"], "--port", "0", "--no-access-log"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    try:
        line = ""
        deadline = time.time() + 120
        while time.time() < deadline and "serving" not in line:
            line = proc.stderr.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1))
        assert port > 0
        for _ in range(100):  # uvicorn starts listening just after the line
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"nothing answers on port {port}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
