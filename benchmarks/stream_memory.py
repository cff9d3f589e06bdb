"""Peak memory of `dec2vec embed --input FILE --output X.npy` against the number of texts.

    python benchmarks/stream_memory.py --model DIR --source texts.jsonl --n 10000 100000 [--out F]

For each n, a file of n lines (the source texts, cycled) is embedded by the CLI's streaming path in
this process while a thread samples the resident set (and CUDA's allocator peak). Flat peaks across
n show that memory follows the chunk and the token budget, not the corpus.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dec2vec.bench.measure import RssSampler, rss_bytes
from dec2vec.cli import main as cli


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--source", required=True, help=".jsonl with a text field, cycled to n lines")
    ap.add_argument("--n", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args()
    src = [json.loads(line)["text"] for line in open(args.source, encoding="utf-8")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            path = Path(tmp) / f"texts-{n}.jsonl"
            with open(path, "w", encoding="utf-8") as f:
                for t in itertools.islice(itertools.cycle(src), n):
                    f.write(json.dumps({"text": t}) + "\n")
            out = Path(tmp) / f"emb-{n}.npy"
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            before = rss_bytes()
            argv = ["embed", "--model", args.model, "--input", str(path), "--output", str(out)]
            if args.device:
                argv += ["--device", args.device]
            with RssSampler(0.01) as sampler:
                t = time.perf_counter()
                rc = cli(argv)
                seconds = time.perf_counter() - t
            if rc != 0:
                sys.exit(rc)
            shape = np.load(out, mmap_mode="r").shape
            row = {
                "texts": n,
                "seconds": round(seconds, 1),
                "rss_before_mb": round(before / 2**20),
                "peak_rss_mb": round(sampler.peak / 2**20),
                "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
                "output_shape": list(shape),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            out.unlink()
            path.unlink()
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
