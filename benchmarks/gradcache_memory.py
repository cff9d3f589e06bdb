"""Peak memory of one contrastive step: a big batch with gradient caching vs a small plain batch.

    python benchmarks/gradcache_memory.py [--batch 512 --chunk 32 --small 32] [--out docs/BENCHMARKS.md]

Each setting runs in its own process (peak RSS on CPU, peak allocated on CUDA), on the real default
backbone with the `last-token` recipe, LoRA r=16, WordNet word -> gloss pairs from `dec2vec data build`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import torch
from report import emit


def one(batch: int, chunk: int) -> dict:
    from transformers.utils import logging as hf_logging

    from dec2vec.train.config import TrainConfig
    from dec2vec.train.trainer import Trainer

    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig.from_dict(
            {
                "model": {"recipe": "last-token"},
                "output_dir": tmp,
                "checkpoint_every": 0,
                "lora": {"dropout": 0.0},
                "stages": [
                    {
                        "objective": "contrastive",
                        "data": [{"path": "wordnet-word-gloss.train.jsonl"}],
                        "steps": 1,
                        "batch_size": batch,
                        "chunk_size": chunk,
                        "hard_negatives": 0,
                        "max_length": 32,
                    }
                ],
            }
        )
        trainer = Trainer(cfg, progress=False)
        trainer.export = lambda: None  # only the step is measured
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        trainer.run()
        dt = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"batch": batch, "chunk": chunk, "seconds": dt, "peak_gb": peak / 1e6, "before_step_gb": base / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--small", type=int, default=32)
    ap.add_argument("--one", nargs=2, type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    rows = []
    for batch, chunk in ((args.small, 0), (args.batch, args.chunk)):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(batch), str(chunk)], check=True, capture_output=True, text=True
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    table = (
        f"\n### Gradient caching: peak memory of one contrastive step (CPU, torch {torch.__version__})\n\n"
        f"`python benchmarks/gradcache_memory.py --batch {args.batch} --chunk {args.chunk} --small {args.small}`; "
        "SmolLM2-135M-Instruct, last-token, LoRA r=16, WordNet word -> gloss, max length 32; peak RSS of "
        "the whole process (model loading included)\n\n"
        "| batch | chunk_size | step seconds | peak RSS GB |\n|---|---|---|---|\n"
        + "".join(f"| {r['batch']} | {r['chunk'] or 'off'} | {r['seconds']:.1f} | {r['peak_gb']:.2f} |\n" for r in rows)
    )
    emit(table, args.out)


if __name__ == "__main__":
    main()
