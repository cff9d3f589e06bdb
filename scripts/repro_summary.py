"""Training table for docs/RESULTS.md from the runs of scripts/reproduce.sh.

    python scripts/repro_summary.py runs/repro [--plot docs/eval/repro/losses.png]

Per run: stages and steps, wall time and peak memory (from ``/usr/bin/time -v`` in
``NAME.train.err``), real tokens seen, and each objective's mean loss over its first and last
ten steps (from ``log.csv``): whether the loss went down. ``--plot`` draws each run's contrastive
loss (moving mean over 10 steps; a step's batch comes from one source, so raw losses jump).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path


def time_v(path: Path) -> tuple[str, float]:
    text = path.read_text(errors="replace") if path.is_file() else ""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return (wall.group(1) if wall else "?"), (int(rss.group(1)) / 1e6 if rss else float("nan"))


def plot(root: Path, dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for log in sorted(root.glob("*/log.csv")):
        losses = [float(r["loss"]) for r in csv.DictReader(log.open()) if r["objective"] == "contrastive"]
        if len(losses) >= 10:
            ax.plot(
                np.arange(10, len(losses) + 1),
                np.convolve(losses, np.ones(10) / 10, mode="valid"),
                label=log.parent.name,
            )
    ax.set_xlabel("contrastive step (batch 8, 1 hard negative where the data has one)")
    ax.set_ylabel("InfoNCE loss, moving mean of 10 steps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)


def main() -> None:
    args = sys.argv[1:]
    dest = None
    if "--plot" in args:
        i = args.index("--plot")
        dest = Path(args[i + 1])
        del args[i : i + 2]
    root = Path(args[0] if args else "runs/repro")
    if dest is not None:
        plot(root, dest)
    print("| run | steps per objective | wall | peak RSS GB | real tokens | loss first 10 → last 10 |")
    print("|---|---|---:|---:|---:|---|")
    for log in sorted(root.glob("*/log.csv")):
        name = log.parent.name
        rows = list(csv.DictReader(log.open()))
        stages: dict[str, list[float]] = {}
        for r in rows:
            stages.setdefault(r["objective"], []).append(float(r["loss"]))
        wall, rss = time_v(root / f"{name}.train.err")
        tokens = sum(int(r["tokens"]) for r in rows)
        steps = " → ".join(f"{k} {len(v)}" for k, v in stages.items())
        losses = "; ".join(
            f"{k} {sum(v[:10]) / len(v[:10]):.2f} → {sum(v[-10:]) / len(v[-10:]):.2f}" for k, v in stages.items()
        )
        print(f"| {name} | {steps} | {wall} | {rss:.1f} | {tokens:,} | {losses} |")


if __name__ == "__main__":
    main()
