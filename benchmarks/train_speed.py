"""Training throughput of every method's config on this machine (CPU or GPU).

    dec2vec data build                      # the corpora the configs read
    python benchmarks/train_speed.py [--configs configs/tiny/*.yaml] [--steps N] [--out docs/BENCHMARKS.md]
    python benchmarks/train_speed.py --logs runs/tiny-*      # summarise runs already made with `dec2vec train`

Each config runs as written (or ``--steps`` steps per stage), without checkpoints, in a temporary
folder; the first step of each stage is warm-up and left out. Tokens are the real (non-pad) backbone tokens of all texts
in the step (queries, positives, hard negatives; both SimCSE views), as the trainer logs them.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch
import transformers
from report import cpu_name, emit
from transformers.utils import logging as hf_logging

from dec2vec.train.config import TrainConfig, load_config
from dec2vec.train.trainer import Trainer


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="*", default=sorted(glob.glob("configs/tiny/*.yaml")))
    ap.add_argument("--steps", type=int, default=None, help="steps per stage (default: the config's)")
    ap.add_argument("--logs", nargs="*", default=None, help="summarise these finished run folders instead")
    ap.add_argument("--set", action="append", default=[], help="extra overrides for every config")
    ap.add_argument("--out", default=None, help="append a Markdown table to this file")
    args = ap.parse_args()
    hf_logging.disable_progress_bar()
    rows = []
    runs = [(Path(d) / "config.json", Path(d)) for d in args.logs] if args.logs is not None else None
    for path, folder in runs or [(Path(c), None) for c in args.configs]:
        if folder is None:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = load_config(path, [f"output_dir={tmp}", "checkpoint_every=0", *args.set])
                for s in cfg.stages:
                    s.steps = args.steps or s.steps
                    s.warmup_steps = min(s.warmup_steps, s.steps)
                Trainer(cfg, progress=False).run()
                log = _read(Path(tmp) / "log.csv")
        else:
            cfg = TrainConfig.from_dict(json.loads(path.read_text()))
            log = _read(folder / "log.csv")
        for stage in cfg.stages:
            mine = [r for r in log if r["stage"] == stage.name][1:]
            sec = [float(r["sec_per_step"]) for r in mine]
            tok = [int(r["tokens"]) for r in mine]
            name = folder.name if folder else path.stem
            row = (
                name,
                stage.objective,
                stage.batch_size,
                stage.max_length or cfg.model.max_length,
                statistics.mean(tok),
                statistics.median(sec),
                sum(tok) / sum(sec),
            )
            rows.append(row)
            print(
                f"{row[0]:<18} {row[1]:<12} batch {row[2]:>3} len<={row[3]:<4} {row[4]:8.0f} tok/step "
                f"{row[5]:7.2f} s/step {row[6]:8.0f} tok/s",
                flush=True,
            )
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    how = "--logs " + " ".join(args.logs) if args.logs is not None else (f"--steps {args.steps}" if args.steps else "")
    dev = device if device == "cpu" else torch.cuda.get_device_name()
    header = (
        f"\n### Training throughput, {dev} ({cpu_name()}, {torch.get_num_threads()} threads), "
        f"{cfg.model.dtype}, LoRA r={cfg.lora.r}\n\n"
        f"torch {torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}; "
        f"`python benchmarks/train_speed.py {how}`"
        "; tokens = real (non-pad) backbone tokens of all texts in a step\n\n"
        "| config | objective | batch | max length | real tokens/step | s/step (median) | tokens/s |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.0f} | {r[5]:.2f} | {r[6]:.0f} |\n" for r in rows
    )
    emit(table, args.out)


if __name__ == "__main__":
    main()
