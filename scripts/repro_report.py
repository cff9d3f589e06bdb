"""The reproduction's tables, learning curves and claim verdicts, from its runs and evaluations.

    python scripts/repro_report.py $DEC2VEC_HOME/runs/repro $DEC2VEC_HOME/runs/causal2vec-distill \
        --bench docs/bench/cpu/bench.json --out docs/eval/repro

The first folder is the reproduction root of ``scripts/reproduce.sh``: one training ``output_dir``
per method, and ``eval/NAME/results.json`` per evaluated model (``eval/baselines`` holds the
untrained recipes and the sentence-transformers models). Further folders are runs trained elsewhere
(the flagship). Writes into ``--out``:

- ``table.md``: the standard suite per model (main score x100 per task, mean with its 95% CI), the
  paired difference from Causal2Vec with its CI, perplexity, tokens per text;
- ``training.md``: per run, its stages, steps, tokens seen, wall time, the validation MRR curve and
  whether it flattened (the last two validations within 0.01), and the validation ranking that picks
  the shipped model (validation split only, never the suite);
- ``claims.md``: every claim's verdict (``dec2vec eval --claims`` on the same files);
- ``learning-curves.png`` and ``scores.png``.

With ``--doc docs/RESULTS.md`` the three tables also replace the page's marked sections
(``<!-- repro:table -->`` ... ``<!-- /repro:table -->``, likewise ``training`` and ``claims``).

Nothing is typed by hand: rerun it after any run or evaluation finishes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from dec2vec.evaluation import compare
from dec2vec.evaluation.claims import format_verdicts, judge_all
from dec2vec.evaluation.plots import plot_scores
from dec2vec.evaluation.report import SHORT

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning_curve  # noqa: E402

REFERENCE = "causal2vec"  # every row's paired difference is taken against this model
FLAT = 0.01  # a curve has flattened when its last two validations differ by less than this MRR


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_summary(folder: Path) -> dict[str, Any]:
    """Stages, steps, tokens, wall time and validation curve of one training output_dir."""
    log = read_csv(folder / "log.csv")
    valid = [r for r in read_csv(folder / "valid.csv") if r.get("mrr")]
    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    planned = sum(int(s.get("steps", 0)) for s in cfg.get("stages", []))
    steps: dict[str, int] = {}
    for r in log:
        steps[r["stage"]] = steps.get(r["stage"], 0) + 1
    tokens = sum(int(r["tokens"]) for r in log if r.get("tokens"))
    progress = json.loads((folder / "progress.json").read_text()) if (folder / "progress.json").is_file() else {}
    wall = max((v.get("wall_s", 0.0) for v in progress.values()), default=0.0)
    if valid:
        wall = max(wall, float(valid[-1]["wall_s"]))
    curve = [(int(r["step"]), float(r["mrr"])) for r in valid]
    summary_file = folder / "model" / "training.json"
    device = json.loads(summary_file.read_text()).get("device") if summary_file.is_file() else None
    flat = len(curve) >= 2 and abs(curve[-1][1] - curve[-2][1]) < FLAT
    return {
        "name": folder.name,
        "folder": folder,
        "steps": steps,
        "planned": planned,
        "done": sum(steps.values()),
        "finished": (folder / "model" / "dec2vec.json").is_file(),
        "tokens": tokens,
        "wall_s": wall,
        "curve": curve,
        "flat": flat,
        "recipe": cfg.get("model", {}).get("recipe", "?"),
        "hardware": hardware_notes(folder.parent).get(folder.name) or device or "–",
    }


def hardware_notes(runs: Path) -> dict[str, str]:
    """``where.tsv`` beside the runs (run name, tab, what trained it), as scripts/repro_gpu.sh writes it:
    it wins over training.json's device, which names only where a run finished."""
    path = runs / "where.tsv"
    if not path.is_file():
        return {}
    rows = (line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)
    return {name: where.strip() for name, where in rows}


def training_md(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| run | recipe | steps per stage | done | tokens seen | wall | hardware "
        "| validation MRR (step: MRR) | flattened |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in runs:
        stages = " → ".join(f"{k} {v}" for k, v in r["steps"].items()) or "–"
        curve = ", ".join(f"{s}: {m:.3f}" for s, m in r["curve"]) or "–"
        done = f"{r['done']}/{r['planned']}" + ("" if r["finished"] else " (running or stopped)")
        wall = f"{r['wall_s'] / 60:.0f} min" if r["wall_s"] else "–"
        flat = "yes" if r["flat"] else ("no" if len(r["curve"]) >= 2 else "– (no validation)")
        lines.append(
            f"| {r['name']} | {r['recipe']} | {stages} | {done} | {r['tokens']:,} | {wall} | {r['hardware']} "
            f"| {curve} | {flat} |"
        )
    ranked = sorted((r for r in runs if r["finished"] and r["curve"]), key=lambda r: -r["curve"][-1][1])
    lines += [
        "",
        "Validation ranking (final MRR on the held-out split; this, never the suite, picks the shipped model):",
        "",
    ]
    lines += [f"{i + 1}. {r['name']}: {r['curve'][-1][1]:.4f}" for i, r in enumerate(ranked)] or ["(no finished run)"]
    return "\n".join(lines) + "\n"


def load_models(files: list[Path]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Report name -> (results, model entry); a later file's entry of a name replaces an earlier one."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    suite = None
    for f in files:
        res = json.loads(f.read_text())
        key = json.dumps({"tasks": [(s["name"], s["sha256"]) for s in res["tasks"]], "settings": res.get("settings")})
        if suite is None:
            suite = key
        elif key != suite:
            raise SystemExit(f"{f}: another suite or other settings than {files[0]}")
        for m in res["models"]:
            out[m["name"]] = (res, m)
    return out


def table_md(models: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> tuple[str, dict[str, dict[str, float]]]:
    tasks = [t for t in SHORT if any(t in m["tasks"] for _, m in models.values())]
    head = [
        "model",
        *(SHORT[t] for t in tasks),
        "**mean**",
        "95% CI",
        f"− {REFERENCE} [95% CI]",
        "perplexity",
        "tokens/text",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    ref = models.get(REFERENCE)
    scores: dict[str, dict[str, float]] = {}
    order = sorted(
        models, key=lambda n: -sum(models[n][1]["tasks"][t]["main_score"] for t in tasks if t in models[n][1]["tasks"])
    )
    for name in order:
        res, m = models[name]
        s = {t: m["tasks"][t]["main_score"] for t in tasks if t in m["tasks"]}
        scores[name] = s
        mean = 100 * sum(s.values()) / len(s)
        ci = m.get("mean_ci")
        ci_s = f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "–"
        diff = "–"
        if ref is not None and name != REFERENCE:
            row = compare.compare_models((res, m), ref)["rows"].get("mean", {})
            if "diff" in row:
                # B − A with A = this model, B = the reference: flip it to read "this model − reference"
                diff = f"{-100 * row['diff']:+.2f} [{-100 * row['ci'][1]:+.2f}, {-100 * row['ci'][0]:+.2f}]"
        gen = m.get("generation") or {}
        ppl = f"{gen['perplexity']:.2f}" if gen.get("perplexity") else "–"
        cost = m.get("cost") or {}
        tok = f"{cost['tokens_per_text']:.1f}" if cost.get("tokens_per_text") else "–"
        cells = [f"{100 * s[t]:.2f}" if t in s else "–" for t in tasks]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | **{mean:.2f}** | {ci_s} | {diff} | {ppl} | {tok} |")
    return "\n".join(lines) + "\n", scores


def write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the reproduction folder: run folders and eval/")
    ap.add_argument("runs", nargs="*", type=Path, help="further training output_dirs (the flagship run)")
    ap.add_argument("--bench", type=Path, help="a `dec2vec bench` JSON: token claims on its text mix")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--doc", type=Path, help="also fill the marked sections of this page (docs/RESULTS.md)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    folders = [*args.runs, *sorted(p for p in args.root.iterdir() if (p / "config.json").is_file())]
    runs = [run_summary(f) for f in folders]
    write(args.out / "training.md", training_md(runs))
    curves = [learning_curve.load_run(r["folder"]) for r in runs if r["curve"]]
    if curves:
        fig = learning_curve.draw(curves)
        fig.savefig(args.out / "learning-curves.png", dpi=110)

    files = sorted((args.root / "eval").glob("*/results.json"))
    files.sort(key=lambda f: f.parent.name != "baselines")  # baselines first: a trained run's name wins
    if files:
        models = load_models(files)
        table, scores = table_md(models)
        write(args.out / "table.md", table)
        plot_scores(scores, args.out / "scores.png", title="standard suite, main score")
    claim_files = [str(f) for f in files] + ([str(args.bench)] if args.bench else [])
    if claim_files:
        write(args.out / "claims.md", format_verdicts(judge_all(claim_files)))
    for name in ("training.md", "table.md", "claims.md"):
        if (args.out / name).is_file():
            print(f"## {name}\n\n{(args.out / name).read_text()}")
            if args.doc:
                fill(args.doc, name.removesuffix(".md"), (args.out / name).read_text())


def fill(doc: Path, section: str, text: str) -> None:
    """Replace what lies between ``<!-- repro:SECTION -->`` and ``<!-- /repro:SECTION -->`` in ``doc``."""
    begin, end = f"<!-- repro:{section} -->", f"<!-- /repro:{section} -->"
    page = doc.read_text()
    if begin not in page or end not in page:
        raise SystemExit(f"{doc}: no {begin} ... {end} markers")
    head, rest = page.split(begin, 1)
    _, tail = rest.split(end, 1)
    write(doc, f"{head}{begin}\n{text.rstrip()}\n{end}{tail}")


if __name__ == "__main__":
    main()
