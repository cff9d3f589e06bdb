"""The side-by-side table of docs/RESULTS.md, merged from `dec2vec eval` results files.

    python scripts/repro_table.py docs/eval/quick/results.json runs/repro/eval/*/results.json \
        --out docs/eval/repro

Every file is a `dec2vec eval --tasks quick` run of the same suite and settings (checked: the
task files' sha256 and the settings must agree); rows keep each file's model names, a later file's
row replaces an earlier one of the same name. Writes ``table.md`` (main score ×100 per task, mean
over tasks, LLM tokens per text, perplexity) and ``scores.png`` (the suite's grouped bar chart).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dec2vec.evaluation.plots import plot_scores
from dec2vec.evaluation.report import SHORT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rows: dict[str, dict] = {}
    task_types: dict[str, str] = {}
    suite = None
    for f in args.results:
        r = json.loads(Path(f).read_text())
        key = json.dumps({"tasks": [(s["name"], s["sha256"]) for s in r["tasks"]], "settings": r["settings"]})
        if suite is None:
            suite = key
        elif key != suite:
            raise SystemExit(f"{f}: another suite or other settings than {args.results[0]}")
        for spec in r["tasks"]:
            task_types[spec["name"]] = spec["type"]
        for m in r["models"]:
            name = m["name"]
            if str(m.get("source", "")).startswith("runs/") and "trained" not in name:
                name = f"{name} (trained)"  # a folder from `dec2vec train`, not the untrained recipe
            rows[name] = m
    tasks = list(SHORT)
    head = "| model | " + " | ".join(SHORT[t] for t in tasks) + " | **mean** | LLM tokens/text | perplexity |"
    lines = [head, "|---" * (len(tasks) + 4) + "|"]
    scores: dict[str, dict[str, float | None]] = {}
    for name, m in rows.items():
        s = {t: m["tasks"][t]["main_score"] for t in tasks if t in m["tasks"]}
        scores[name] = s
        mean = 100 * sum(s.values()) / len(s)
        cost = m.get("cost") or {}
        tok = f"{cost['tokens_per_text']:.1f}" if m.get("kind") == "dec2vec" and cost else "–"
        gen = m.get("generation") or {}
        ppl = f"{gen['perplexity']:.2f}" if gen.get("perplexity") else "–"
        cells = " | ".join(f"{100 * s[t]:.2f}" if t in s else "–" for t in tasks)
        lines.append(f"| {name} | {cells} | **{mean:.2f}** | {tok} | {ppl} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    plot_scores(scores, out / "scores.png", title="quick suite, main score", task_types=task_types or None)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
