"""Every bad path, file and flag a user can give: exit 2, one line on stderr, no model loaded, nothing left.

The table runs ``dec2vec.cli.main`` in-process with model loading replaced by a function that
fails the test, so each case proves its check comes before the model (issue 18: "Tried as a new
user would").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dec2vec import __version__
from dec2vec.cli import main

CONFIG = """model: {{recipe: {recipe}}}
output_dir: {out}
stages:
  - objective: contrastive
    data: [{{path: {data}}}]
    steps: 1
"""


pytestmark = pytest.mark.usefixtures("no_model_loads")  # a bad input must be refused before any model load


@pytest.fixture
def paths(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # relative defaults (eval-report, runs/…) land here, where leftovers are seen
    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    (tmp_path / "good.txt").write_text("the cat\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"text": broken\n')
    (tmp_path / "empty_text.jsonl").write_text('{"text": "ok"}\n{"text": ""}\n')
    (tmp_path / "no_field.jsonl").write_text('{"text": "ok"}\n{"body": "x"}\n')
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "rows.csv").write_text("text\nthe cat\n")
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_dir" / "notes.bin").write_bytes(b"\0")
    (tmp_path / "out.npy").mkdir()  # a folder with an output's name
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "bad.yaml").write_text("model: {recipe: mean\nstages: [\n")
    for name, recipe, data, out in (
        ("train.yaml", "mean", "/nonexistent/pairs.jsonl", "runs/x"),
        ("train_unknown.yaml", "nope", "good.txt", "runs/x"),
        ("train_out.yaml", "mean", "good.txt", "a_file/run"),
    ):
        (tmp_path / name).write_text(CONFIG.format(recipe=recipe, data=data, out=out))
    return {"proc": "/proc/x.npy"}


# (id, argv, text the one line must hold)
CASES = [
    # the command line itself
    ("unknown-command", ["nope"], "invalid choice: 'nope'"),
    ("unknown-flag", ["embed", "--bogus", "x"], "unrecognized arguments: --bogus"),
    # embed: inputs
    ("embed-no-texts", ["embed"], "give texts on the command line or --input"),
    ("embed-texts-and-input", ["embed", "x", "--input", "good.txt", "--json"], "not both"),
    ("embed-empty-text", ["embed", "  "], "item 0: the text is empty"),
    ("embed-missing-input", ["embed", "--input", "none.txt", "-o", "o.npy"], "input file 'none.txt' does not exist"),
    ("embed-input-is-dir", ["embed", "--input", "a_dir", "-o", "o.npy"], "input 'a_dir' is a directory"),
    ("embed-bad-jsonl", ["embed", "--input", "bad.jsonl", "-o", "o.npy"], "bad.jsonl:2: malformed JSON"),
    ("embed-jsonl-empty-text", ["embed", "--input", "empty_text.jsonl", "--json"], "empty_text.jsonl:2: the text"),
    ("embed-jsonl-no-field", ["embed", "--input", "no_field.jsonl", "-o", "o.npy"], "no_field.jsonl:2: no 'text'"),
    ("embed-only-blank-lines", ["embed", "--input", "blank.txt", "-o", "o.npy"], "blank.txt: no texts"),
    ("embed-not-utf8", ["embed", "--input", "latin1.txt", "-o", "o.npy"], "latin1.txt:1: not valid UTF-8"),
    ("embed-unsupported-input", ["embed", "--input", "rows.csv", "-o", "o.npy"], "unsupported input type '.csv'"),
    ("embed-input-without-output", ["embed", "--input", "good.txt"], "--input needs --output"),
    # embed: outputs
    ("embed-output-type", ["embed", "x", "-o", "o.csv"], "unsupported output type '.csv'"),
    ("embed-output-under-file", ["embed", "x", "-o", "a_file/x.npy"], "a_file is a file, not a folder"),
    ("embed-output-deep-under-file", ["embed", "x", "-o", "a_file/b/x.npy"], "a_file is a file, not a folder"),
    ("embed-output-is-dir", ["embed", "x", "-o", "out.npy"], "out.npy is a directory"),
    ("embed-output-unwritable", ["embed", "x", "-o", "{proc}"], "cannot create files in /proc"),
    # embed: model and flags
    ("embed-unknown-model", ["embed", "-m", "nope", "x"], "neither a saved dec2vec model folder nor a recipe"),
    ("embed-missing-folder", ["embed", "-m", "./missing/model", "x"], "neither a saved dec2vec model"),
    ("embed-hub-id-offline", ["embed", "-m", "nobody/no-such-model", "x"], "neither a saved dec2vec model"),
    ("embed-backbone-name", ["embed", "-m", "smollm2-135m-instruct", "x"], "is a backbone LLM"),
    ("embed-encoder-instruction", ["embed", "-m", "all-minilm-l6-v2", "-i", "q", "x"], "takes no --instruction"),
    ("embed-unknown-dtype", ["embed", "--dtype", "int8", "x"], "argument --dtype: invalid choice: 'int8'"),
    ("embed-negative-max-tokens", ["embed", "--max-tokens", "-5", "x"], "--max-tokens: expected a positive integer"),
    ("embed-zero-max-tokens", ["embed", "--max-tokens", "0", "x"], "--max-tokens: expected a positive integer"),
    ("embed-text-max-tokens", ["embed", "--max-tokens", "many", "x"], "expected a positive integer, got 'many'"),
    ("embed-zero-chunk-size", ["embed", "--chunk-size", "0", "x"], "--chunk-size: expected a positive integer"),
    ("info-unknown-model", ["info", "nope"], "neither a saved dec2vec model"),
    # index build
    ("index-no-input", ["index", "build", "--db", "db"], "give --input FILES_OR_DIRS or --demo-corpus"),
    ("index-input-and-demo", ["index", "build", "--db", "db", "--input", "good.txt", "--demo-corpus", "vital"], "one"),
    ("index-limit-without-demo", ["index", "build", "--db", "db", "--input", "good.txt", "--limit", "3"], "--limit"),
    ("index-zero-limit", ["index", "build", "--db", "db", "--demo-corpus", "vital", "--limit", "0"], "--limit:"),
    ("index-missing-input", ["index", "build", "--db", "db", "--input", "none.txt"], "'none.txt' does not exist"),
    ("index-dir-nothing-to-index", ["index", "build", "--db", "db", "--input", "a_dir"], "holds no .txt"),
    ("index-bad-jsonl", ["index", "build", "--db", "db", "--input", "bad.jsonl"], "bad.jsonl:2: malformed JSON"),
    ("index-unsupported-input", ["index", "build", "--db", "db", "--input", "a_file"], "unsupported input type"),
    ("index-db-is-file", ["index", "build", "--db", "a_file", "--input", "good.txt"], "a_file is a file"),
    ("index-db-under-file", ["index", "build", "--db", "a_file/db", "--input", "good.txt"], "a_file is a file"),
    ("index-zero-batch", ["index", "build", "--db", "db", "--input", "good.txt", "--batch", "0"], "--batch:"),
    ("index-negative-overlap", ["index", "build", "--db", "db", "--input", "good.txt", "--overlap", "-1"], "overlap"),
    (
        "index-overlap-not-below-size",
        ["index", "build", "--db", "db", "--input", "good.txt", "--chunk-size", "8", "--overlap", "8"],
        "chunk overlap must be in [0, size)",
    ),
    ("index-unknown-model", ["index", "build", "--db", "db", "--input", "good.txt", "-m", "nope"], "neither a saved"),
    ("index-info-missing", ["index", "info", "--db", "db"], "no index at"),
    # search and ask
    ("search-no-index", ["search", "--db", "db", "cats"], "no index at"),
    ("search-empty-query", ["search", "--db", "db", " "], "the query is empty"),
    ("search-zero-k", ["search", "--db", "db", "cats", "-k", "0"], "argument -k: expected a positive integer"),
    ("search-unknown-dtype", ["search", "--db", "db", "cats", "--dtype", "int8"], "invalid choice: 'int8'"),
    ("ask-empty-question", ["ask", "--db", "db", ""], "the question is empty"),
    ("ask-zero-new-tokens", ["ask", "--db", "db", "why?", "--max-new-tokens", "0"], "--max-new-tokens:"),
    # eval
    ("eval-unknown-dtype", ["eval", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    ("eval-compare-missing", ["eval", "--compare", "a.json", "b.json"], "no results.json at 'a.json'"),
    ("eval-claims-missing", ["eval", "--claims", "none.json"], "none.json"),
    ("eval-out-under-file", ["eval", "--out", "a_file/report"], "a_file is a file, not a folder"),
    ("eval-no-models", ["eval", "--baselines", "none"], "no models to evaluate"),
    # train and validate
    ("train-missing-config", ["train", "none.yaml"], "config file not found: none.yaml"),
    ("train-bad-yaml", ["train", "bad.yaml"], "bad.yaml: not valid YAML"),
    ("train-set-without-value", ["train", "train.yaml", "--set", "steps"], "--set expects key=value"),
    ("train-set-unknown-key", ["train", "train.yaml", "--set", "bogus=1"], "unknown key(s) ['bogus']"),
    ("train-negative-steps", ["train", "train.yaml", "--set", "stages.0.steps=-1"], "steps must be >= 1"),
    ("train-missing-data", ["train", "train.yaml"], "training data not found: /nonexistent/pairs.jsonl"),
    ("train-unknown-recipe", ["train", "train_unknown.yaml"], "nope"),
    ("train-output-under-file", ["train", "train_out.yaml"], "a_file is a file, not a folder"),
    ("validate-zero-n", ["validate", "train.yaml", "--models", "mean", "--n", "0"], "--n: expected a positive"),
    # serve
    ("serve-port-out-of-range", ["serve", "--port", "70000"], "--port must be within 0..65535"),
    ("serve-zero-max-inputs", ["serve", "--max-inputs", "0"], "--max-inputs: expected a positive integer"),
    ("serve-negative-wait", ["serve", "--batch-wait-ms", "-1"], "--batch-wait-ms: expected 0..10000"),
    ("serve-zero-batch-tokens", ["serve", "--batch-tokens", "0"], "--batch-tokens: expected a positive integer"),
    ("serve-unknown-model", ["serve", "--model", "nope", "--port", "0"], "neither a saved dec2vec model"),
    # bench
    ("bench-unknown-recipe", ["bench", "--recipes", "nope"], "unknown recipe(s) ['nope']"),
    ("bench-unknown-dtype", ["bench", "--dtype", "int8"], "invalid choice: 'int8'"),
]


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse exits itself
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_one_line_error(code, out, err, match):
    assert code == 2, err
    assert "Traceback" not in err and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dec2vec: error: "), err
    assert match in lines[0], lines[0]


@pytest.mark.parametrize("argv,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_before_any_model(capsys, tmp_path, paths, argv, match):
    if "{proc}" in argv and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    before = tree(tmp_path)
    code, out, err = run_cli(capsys, [a.format(**paths) for a in argv])
    assert_one_line_error(code, out, err, match)
    assert tree(tmp_path) == before  # no output, index folder, probe or temp file left behind


def test_port_in_use_is_refused_before_the_model(capsys, paths):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_cli(capsys, ["serve", "--port", str(port)])
    assert_one_line_error(code, out, err, f"port {port} on 127.0.0.1 is already in use")


def test_failed_build_removes_only_the_db_folder_it_created(capsys, tmp_path, paths):
    """--demo-corpus writes its sources into --db before the model loads; a model that fails must not
    leave that folder behind, while a folder that was there before is kept as it was."""
    pytest.importorskip("lancedb")
    code, out, err = run_cli(capsys, ["index", "build", "--db", "new-db", "--demo-corpus", "vital", "-m", "nope"])
    assert_one_line_error(code, out, err, "neither a saved dec2vec model")
    assert not (tmp_path / "new-db").exists()
    (tmp_path / "old-db").mkdir()
    code, out, err = run_cli(capsys, ["index", "build", "--db", "old-db", "--input", "good.txt", "-m", "nope"])
    assert_one_line_error(code, out, err, "neither a saved dec2vec model")
    assert (tmp_path / "old-db").is_dir()


def test_version_and_help_without_torch():
    """`dec2vec --help` and `--version` answer without importing torch (about 2 s of a 2-core CPU)."""
    probe = (
        "import sys\n"
        "from dec2vec.cli import main\n"
        "for argv in (['--version'], ['--help'], ['embed', '--help'], ['serve', '--help'], ['bench', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert res.stdout.startswith(f"dec2vec {__version__}\n") and "usage: dec2vec" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "[]"


def test_documented_batch_defaults_are_the_engines(capsys):
    """--max-tokens, --batch-tokens and the docs once said 16384 on GPU while the engine used 32768."""
    import torch

    from dec2vec.device import default_max_tokens

    cpu, cuda = default_max_tokens(torch.device("cpu")), default_max_tokens(torch.device("cuda"))
    for command in ("embed", "serve"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"{cpu} on CPU, {cuda} on CUDA" in text, command
    docs = Path(__file__).resolve().parents[2] / "docs"
    for name in ("SERVING.md", "RAY.md"):
        text = " ".join((docs / name).read_text().split())
        assert f"{cuda} on CUDA" in text and "16384 on GPU" not in text, name


def test_a_closed_pipe_ends_quietly():
    """`dec2vec … | head`: when the reader goes away, no BrokenPipeError traceback, the SIGPIPE exit code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dec2vec.cli", "recipes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    proc.stdout.close()  # before the interpreter has started: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
