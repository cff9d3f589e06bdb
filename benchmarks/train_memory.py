"""Peak memory of a training step against batch and sequence length, with and without gradient
checkpointing, with and without GradCache.

    python benchmarks/train_memory.py [--backbone smollm2-135m-instruct] [--encoder all-minilm-l6-v2]
        [--batches 4 16] [--lengths 128 512] [--modes plain ckpt gradcache ckpt+gradcache] [--chunk 4] [--out FILE]

Each cell is a fresh subprocess (so one cell's allocations never count in another's) that builds the
real ``Trainer`` (Causal2Vec + light encoder, LoRA r=16, bf16 autocast, contrastive with in-batch
negatives, texts that fill the token limit) and runs one optimizer step. On a CPU the figure is the
process's peak resident memory (``ru_maxrss``) less its resident memory once the model is built: what
the step added (activations, gradients, optimizer state, allocator caches). On CUDA it is
``torch.cuda.max_memory_allocated`` over the step, less the memory allocated before it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = {"plain": (False, False), "ckpt": (True, False), "gradcache": (False, True), "ckpt+gradcache": (True, True)}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cell(args: argparse.Namespace) -> None:
    """One measurement, in this (fresh) process; prints one JSON line."""
    import torch
    from train_speed import synthetic_pairs
    from transformers.utils import logging as hf_logging

    from dec2vec.train.config import TrainConfig
    from dec2vec.train.trainer import Trainer

    hf_logging.disable_progress_bar()
    ckpt, gradcache = MODES[args.mode]
    device = "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        synthetic_pairs(data, 4 * args.batch, words=args.length * 2)
        cfg = TrainConfig.from_dict(
            {
                "model": {
                    "recipe": "causal2vec",
                    "backbone": args.backbone,
                    "encoder": args.encoder,
                    "max_length": args.length,
                },
                "output_dir": f"{tmp}/run",
                "device": device,
                "precision": "bf16",
                "checkpoint_every": 0,
                "gradient_checkpointing": ckpt,
                "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
                "stages": [
                    {
                        "objective": "contrastive",
                        "data": [{"path": str(data)}],
                        "steps": 1,
                        "batch_size": args.batch,
                        "hard_negatives": 0,
                        "chunk_size": args.chunk if gradcache else 0,
                    }
                ],
            }
        )
        trainer = Trainer(cfg, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
        else:
            before = rss_mib()
        t0 = time.perf_counter()
        trainer.runlog.t_start = t0
        trainer._fresh_start()
        trainer.out.mkdir(parents=True, exist_ok=True)
        trainer._run_stage(0, None, None)  # the step alone: no export of the model afterwards
        took = time.perf_counter() - t0
        if device == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"device": device, "model_mib": before, "peak_mib": peak, "step_mib": peak - before, "s": took}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="smollm2-135m-instruct")
    ap.add_argument("--encoder", default="all-minilm-l6-v2")
    ap.add_argument("--batches", nargs="*", type=int, default=[4, 16])
    ap.add_argument("--lengths", nargs="*", type=int, default=[128, 512])
    ap.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    ap.add_argument("--chunk", type=int, default=4, help="GradCache chunk (texts per forward)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--cell", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell:
        cell(args)
        return
    from report import cpu_name, emit

    results: dict[tuple[str, int, int], dict] = {}
    for mode in args.modes:
        for length in args.lengths:
            for batch in args.batches:
                cmd = [sys.executable, __file__, "--cell", "--mode", mode, "--batch", str(batch)]
                cmd += ["--length", str(length), "--chunk", str(args.chunk), "--backbone", args.backbone]
                cmd += ["--encoder", args.encoder] + (["--device", args.device] if args.device else [])
                out = subprocess.run(cmd, capture_output=True, text=True, check=False)
                lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
                if out.returncode or not lines:
                    print(out.stderr[-3000:], file=sys.stderr)
                    continue
                r = results[(mode, length, batch)] = json.loads(lines[-1])
                print(f"{mode:<15} len {length:<4} batch {batch:<3} step +{r['step_mib']:7.0f} MiB ({r['s']:.1f} s)")
    if not results:
        return
    device = next(iter(results.values()))["device"]
    where = "GPU: max_memory_allocated" if device == "cuda" else f"CPU ({cpu_name()}): peak RSS"
    cols = [(length, batch) for length in args.lengths for batch in args.batches]
    header = (
        f"\n### Training memory, {where} added by one step (MiB), {time.strftime('%Y-%m-%d')}\n\n"
        f"`python benchmarks/train_memory.py --batches {' '.join(map(str, args.batches))} --lengths "
        f"{' '.join(map(str, args.lengths))} --chunk {args.chunk}`; {args.backbone} + {args.encoder}, Causal2Vec, "
        "LoRA r=16, bf16 autocast, contrastive (batch = pairs: 2 x batch texts per step); GradCache chunk "
        f"{args.chunk} texts\n\n"
        "| mode | " + " | ".join(f"len {ln}, batch {b}" for ln, b in cols) + " |\n"
        "|---|" + "---|" * len(cols) + "\n"
    )
    rows = "".join(
        f"| {mode} | "
        + " | ".join(f"{results[(mode, ln, b)]['step_mib']:.0f}" if (mode, ln, b) in results else "-" for ln, b in cols)
        + " |\n"
        for mode in args.modes
    )
    emit(header + rows, args.out)


if __name__ == "__main__":
    main()
