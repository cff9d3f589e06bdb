"""CPU/GPU encode speed of every recipe on real sentences (Lee corpus background text, from gensim).

    pip install --no-deps gensim==4.4.0   # only its test data is read; gensim is never imported
    python benchmarks/encode_speed.py --n 1000 [--device cpu] [--out docs/BENCHMARKS.md]

Reports texts/s and tokens/s, where tokens are the backbone tokens fed to the LLM (padding
excluded; templates, few-shot prefixes and the Contextual token included), plus the time of the
light encoder for causal2vec inside the same wall-clock.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import re
import time
from pathlib import Path

import torch
import transformers
from report import cpu_name, emit
from transformers.utils import logging as hf_logging

from dec2vec import Embedder, recipe_names


def lee_sentences(n: int) -> list[str]:
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise SystemExit("needs gensim's test data: pip install --no-deps gensim==4.4.0")
    path = Path(spec.origin).parent / "test" / "test_data" / "lee_background.cor"
    text = path.read_text(encoding="latin-1")
    sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    if len(sents) < n:
        raise SystemExit(f"only {len(sents)} sentences in {path}")
    return sents[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--recipes", default=",".join(recipe_names()))
    ap.add_argument("--max-tokens", type=int, default=None, help="default: the engine's per-device default")
    ap.add_argument("--out", default=None, help="append a Markdown table to this file")
    args = ap.parse_args()
    hf_logging.disable_progress_bar()

    texts = lee_sentences(args.n)
    rows = []
    for name in args.recipes.split(","):
        emb = Embedder.from_recipe(name, device=args.device, dtype=args.dtype)
        emb.encode(texts[:32])  # warm-up
        feats_tokens = sum(len(lay.ids) for lay in emb.layouts(texts))
        if emb.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        emb.encode(texts, max_tokens=args.max_tokens)
        if emb.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        rows.append((name, dt, args.n / dt, feats_tokens / dt, feats_tokens / args.n))
        print(
            f"{name:<11} {dt:7.2f}s {args.n / dt:8.1f} texts/s {feats_tokens / dt:9.0f} tokens/s "
            f"{feats_tokens / args.n:6.1f} tokens/text",
            flush=True,
        )

    dev = str(emb.device) if emb.device.type != "cuda" else torch.cuda.get_device_name()
    header = (
        f"\n### Encode speed, {args.n} Lee-corpus sentences, {dev} ({cpu_name()}, {torch.get_num_threads()} threads), "
        f"dtype {str(emb.dtype).removeprefix('torch.')}\n\n"
        f"torch {torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}; "
        f"`python benchmarks/encode_speed.py --n {args.n}`; max_tokens={args.max_tokens or 'default'}\n\n"
        "| recipe | seconds | texts/s | tokens/s | LLM tokens/text |\n|---|---|---|---|---|\n"
    )
    table = header + "".join(f"| {r[0]} | {r[1]:.2f} | {r[2]:.1f} | {r[3]:.0f} | {r[4]:.1f} |\n" for r in rows)
    emit(table, args.out)


if __name__ == "__main__":
    main()
