"""Learning curves of training runs: held-out validation MRR against steps and tokens, and the loss.

    python scripts/learning_curve.py RUN_DIR [RUN_DIR ...] --out curve.png [--smooth 20]

Each RUN_DIR is a training ``output_dir`` run with ``validate_every > 0``: its ``valid.csv`` (step,
tokens seen, mean MRR on the ``*.valid.jsonl`` split) gives the top panels, one line per run; its
``log.csv`` gives the training loss below (thin: per step; thick: moving mean over ``--smooth``
steps, since each step's batch comes from one source and raw losses jump). Scores come from the
validation split only, never from the evaluation suite, so the curve may be used to pick steps.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_run(folder: Path) -> dict[str, Any]:
    """A run's curve (step, tokens, mean MRR) and its per-step loss; complete rows only."""
    valid = folder / "valid.csv"
    if not valid.is_file():
        raise SystemExit(f"{valid}: not found (train with validate_every > 0)")
    curve = []
    for r in read_rows(valid):
        try:
            curve.append((int(r["step"]), int(r["tokens"]), float(r["mrr"])))
        except (KeyError, TypeError, ValueError):
            continue  # a torn last line of a killed run
    if not curve:
        raise SystemExit(f"{valid}: no complete rows")
    loss: list[tuple[int, float]] = []
    if (folder / "log.csv").is_file():
        for r in read_rows(folder / "log.csv"):
            try:
                loss.append((int(r["step"]), float(r["loss"])))
            except (KeyError, TypeError, ValueError):
                continue
    return {"name": folder.resolve().name, "curve": curve, "loss": loss}


def draw(runs: list[dict[str, Any]], smooth: int = 20) -> Any:
    """Three panels: MRR by step, MRR by tokens seen, loss by step (colours shared per run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig = plt.figure(figsize=(11, 7.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 2])
    by_step, by_tokens = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    loss_ax = fig.add_subplot(grid[1, :], sharex=by_step)
    for i, run in enumerate(runs):
        colour = f"C{i % 10}"
        steps, tokens, mrr = (list(col) for col in zip(*run["curve"], strict=True))
        by_step.plot(steps, mrr, marker="o", ms=3, color=colour, label=run["name"])
        by_tokens.plot(tokens, mrr, marker="o", ms=3, color=colour, label=run["name"])
        if run["loss"]:
            x, y = (np.asarray(col) for col in zip(*run["loss"], strict=True))
            loss_ax.plot(x, y, color=colour, lw=0.6, alpha=0.35, label=run["name"])
            if smooth > 1 and len(y) >= smooth:
                mean = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
                loss_ax.plot(x[smooth - 1 :], mean, color=colour, lw=1.8, label="_smoothed")
    by_step.set(xlabel="step", ylabel="validation MRR (mean over sources)", title="by step")
    by_tokens.set(xlabel="tokens seen", title="by tokens seen")
    loss_ax.set(xlabel="step", ylabel="training loss", title=f"training loss (moving mean over {smooth} steps)")
    for ax in (by_step, by_tokens, loss_ax):
        ax.grid(alpha=0.3)
    by_step.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> Any:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="training output_dir(s) holding valid.csv and log.csv")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    ap.add_argument("--smooth", type=int, default=20, help="moving-mean window of the loss panel, in steps")
    args = ap.parse_args(argv)
    fig = draw([load_run(folder) for folder in args.runs], smooth=args.smooth)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(args.out)  # a reader never sees half a PNG
    print(f"wrote {args.out}", file=sys.stderr)
    return fig


if __name__ == "__main__":
    main()
