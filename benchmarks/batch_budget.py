"""How the per-batch token budget changes CPU encode speed (300 Lee sentences, `mean` recipe).

    pip install --no-deps gensim==4.4.0   # only its test data is read; gensim is never imported
    python benchmarks/batch_budget.py [--n 300] [--budgets 256,512,1024,2048,4096,16384]

This is the measurement behind the engine's CPU default (`engine.default_max_tokens`).
"""

import argparse
import importlib.util
import re
import time
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from dec2vec import Embedder


def lee_sentences(n: int) -> list[str]:
    """The first ``n`` sentences (>= 4 words) of the Lee corpus background text (news), from gensim's test data."""
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
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--recipe", default="mean")
    ap.add_argument("--budgets", default="256,512,1024,2048,4096,16384")
    args = ap.parse_args()
    hf_logging.disable_progress_bar()
    texts = lee_sentences(1000)[: args.n]
    emb = Embedder.from_recipe(args.recipe)
    emb.encode(texts[:32])
    tokens = sum(len(lay.ids) for lay in emb.layouts(texts))
    print(f"| max_tokens | seconds | tokens/s |  ({args.recipe}, {args.n} texts, {torch.get_num_threads()} threads)")
    print("|---|---|---|")
    for budget in map(int, args.budgets.split(",")):
        t = time.perf_counter()
        emb.encode(texts, max_tokens=budget)
        dt = time.perf_counter() - t
        print(f"| {budget} | {dt:.2f} | {tokens / dt:.0f} |", flush=True)
    ids = torch.randint(100, 1000, (32, 18))
    with torch.inference_mode():
        emb.backbone(ids)
        t = time.perf_counter()
        for _ in range(5):
            emb.backbone(ids)
        dt = (time.perf_counter() - t) / 5
    print(f"\nraw backbone forward (with LM head), 32x18 tokens: {dt:.2f} s = {32 * 18 / dt:.0f} tokens/s")


if __name__ == "__main__":
    main()
