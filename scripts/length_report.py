"""Scores by text length for a ``dec2vec eval`` run: a Markdown table and a plot, in one folder.

    python scripts/length_report.py RUN/results.json --out docs/eval/length
    python scripts/length_report.py --run --models default=PATH --baselines minilm mpnet \
        --tasks news-passage-retrieval news-paragraph-sts wordnet-word-sts --tier standard --out DIR

With ``--run`` the named tasks are evaluated first (``dec2vec.evaluation.run``, bf16 for dec2vec
models, results cached as usual). The buckets are over proxy tokens (``evaluation.lengths``); the
task data are loaded in the tier the results were computed on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dec2vec.evaluation.lengths import length_report, length_table
from dec2vec.evaluation.plan import plan_tasks
from dec2vec.evaluation.plots import plot_by_length
from dec2vec.foundations.files import write_atomic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", type=Path, help="results.json of a dec2vec eval run")
    ap.add_argument("--run", action="store_true", help="evaluate first (needs --models/--baselines/--tasks)")
    ap.add_argument("--models", nargs="*", default=[])
    ap.add_argument("--baselines", nargs="*", default=[])
    ap.add_argument("--tasks", nargs="*", default=[])
    ap.add_argument("--tier", default="standard", choices=["quick", "standard", "full"])
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if a.run:
        from dec2vec.evaluation.run import EvalConfig, run

        run(
            EvalConfig(
                models=a.models, baselines=a.baselines, tasks=a.tasks, tier=a.tier, dtype=a.dtype,
                out=a.out, generation=False, plots=False,
            )
        )  # fmt: skip
        a.results = a.out / "results.json"
    if a.results is None:
        ap.error("give results.json or --run")
    result = json.loads(a.results.read_text(encoding="utf-8"))
    names = sorted({t for m in result["models"] for t in m["tasks"]})
    tier = result.get("suite", a.tier)
    tasks = {p.name: p.data for p in plan_tasks(names, tier) if p.data is not None}
    report = length_report(result, tasks)
    a.out.mkdir(parents=True, exist_ok=True)
    table = length_table(report)
    write_atomic(a.out / "by-length.md", "# Scores by text length (proxy tokens; score ×100 and items)\n\n" + table)
    write_atomic(a.out / "by-length.json", json.dumps(report, indent=2) + "\n")
    plot_by_length(report, a.out / "by-length.png", title=f"Quality against text length ({tier} tier)")
    print(table)


if __name__ == "__main__":
    main()
