"""scripts/repro_report.py: the reproduction's tables come from the runs and results, and fill RESULTS.md."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_eval_stats import _results

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("repro_report", REPO / "scripts" / "repro_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(folder: Path, curve: list[tuple[int, float]], finished: bool = True) -> None:
    folder.mkdir(parents=True)
    steps = curve[-1][0]
    (folder / "config.json").write_text(json.dumps({"model": {"recipe": folder.name}, "stages": [{"steps": steps}]}))
    log = ["step,stage,objective,loss,tokens"] + [
        f"{s},distill,distill,{2.0 - s / 1000},100" for s in range(1, steps + 1)
    ]
    (folder / "log.csv").write_text("\n".join(log) + "\n")
    valid = ["step,stage,tokens,wall_s,mrr,recall_at_1"] + [
        f"{s},distill,{100 * s},{6.0 * s},{m},0.1" for s, m in curve
    ]
    (folder / "valid.csv").write_text("\n".join(valid) + "\n")
    if finished:
        (folder / "model").mkdir()
        (folder / "model" / "dec2vec.json").write_text("{}")


def test_report_tables_claims_and_page(tmp_path):
    report = _script()
    root = tmp_path / "repro"
    _run(root / "last-token", [(0, 0.15), (100, 0.40), (200, 0.55)])  # still rising: not flat
    _run(tmp_path / "causal2vec-distill", [(0, 0.16), (100, 0.60), (200, 0.70), (300, 0.705)])
    rng = np.random.default_rng(0)
    v = rng.random(200)
    for name, shift in (("causal2vec", 0.2), ("last-token", 0.0)):
        (root / "eval" / name).mkdir(parents=True)
        _results(
            root / "eval" / name / "results.json", {name: {"lee-sts": v + shift, "news-title-retrieval": v + shift}}
        )
    (root / "where.tsv").write_text("last-token\tGPU (H100), 2 runs side by side\n")
    (tmp_path / "causal2vec-distill" / "model" / "training.json").write_text(
        json.dumps({"device": "cpu (2 threads) x 1"})
    )
    page = tmp_path / "RESULTS.md"
    page.write_text(
        "# R\n<!-- repro:table -->\nSTALE\n<!-- /repro:table -->\nkept\n<!-- repro:training -->\n"
        "<!-- /repro:training -->\n<!-- repro:claims -->\n<!-- /repro:claims -->\n"
    )
    out = tmp_path / "out"
    report.main([str(root), str(tmp_path / "causal2vec-distill"), "--out", str(out), "--doc", str(page)])

    training = (out / "training.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in training.splitlines() if line.startswith("| ")}
    assert rows["causal2vec-distill"].endswith("| yes |") and rows["last-token"].endswith("| no |")
    assert "300/300" in rows["causal2vec-distill"] and "0.705" in rows["causal2vec-distill"]
    assert "| cpu (2 threads) x 1 |" in rows["causal2vec-distill"]  # training.json's device
    assert "| GPU (H100), 2 runs side by side |" in rows["last-token"]  # where.tsv wins
    assert training.index("1. causal2vec-distill: 0.7050") < training.index("2. last-token: 0.5500")
    table = (out / "table.md").read_text()
    last = next(line for line in table.splitlines() if line.startswith("| last-token"))
    assert "-20.00 [" in last  # 20 points below the reference, with its paired CI
    claims = (out / "claims.md").read_text()
    assert "| causal2vec vs last-token | mean B > A | **holds** |" in claims
    text = page.read_text()
    assert "STALE" not in text and "kept" in text and "-20.00 [" in text and "**holds**" in text
    assert (out / "learning-curves.png").stat().st_size > 0 and (out / "scores.png").stat().st_size > 0


def test_a_page_without_markers_is_refused(tmp_path):
    page = tmp_path / "RESULTS.md"
    page.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="no <!-- repro:table --> ... <!-- /repro:table --> markers"):
        _script().fill(page, "table", "x")
