"""Host-side cost per text of the encode path, mean against Causal2Vec: no model runs.

    python benchmarks/random_models.py --shape tiny --tokenizer-from SMOLLM2_DIR --out /tmp/tiny-random
    python benchmarks/random_models.py --shape encoder --config-from MINILM_DIR --out /tmp/minilm-random
    python benchmarks/host_prep.py --backbone /tmp/tiny-random --encoder /tmp/minilm-random [--n 300] [--reps 15]

Times what the prefetch thread does for ``encode`` (``engine.plan_work``: validate, tokenize,
cut, plan batches, pad), best of ``reps`` passes over the same mixed texts, and splits it into
the tokenizers' calls (Rust, which releases the GIL, plus transformers' conversion of its output)
and dec2vec's own work around them (layouts, pooled flags, padding), which holds the GIL the
model thread needs. It also counts the tokenizer calls per text. Weights do not matter here, so
random models with the real tokenizers measure the real host cost.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

import torch

from dec2vec import Embedder
from dec2vec.bench.texts import mixed_texts
from dec2vec.engine import EncodeOptions, plan_work


def timed(tokenizer: Any, clock: list[float], counts: Counter[str]) -> None:
    """Make ``tokenizer`` add the seconds of each call to ``clock[0]`` and count the strings it gets."""

    class Timed(type(tokenizer)):  # type: ignore[misc]
        def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:
            counts.update([text] if isinstance(text, str) else text)
            start = time.perf_counter()
            try:
                return super().__call__(text, *args, **kwargs)
            finally:
                clock[0] += time.perf_counter() - start

    tokenizer.__class__ = Timed


def measure(emb: Embedder, texts: list[str], reps: int) -> tuple[float, float, float]:
    """(total, outside tokenizer calls, tokenizer passes) per text; times are each the best of ``reps`` passes."""
    clock, counts = [0.0], Counter[str]()
    tokenizers = [emb.pipeline.tokenizer.tok] + ([emb.encoder.tokenizer] if emb.encoder is not None else [])
    for tok in tokenizers:
        timed(tok, clock, counts)
    opts = EncodeOptions(chunk_size=2048, packed=False)
    best_total = best_own = float("inf")
    for _ in range(reps):
        clock[0] = 0.0
        start = time.perf_counter()
        for _item in plan_work(texts, emb.pipeline, opts, budget=16384, pin=False):
            pass
        total = time.perf_counter() - start
        best_total, best_own = min(best_total, total), min(best_own, total - clock[0])
    passes = sum(counts.values()) / (reps * len(texts))
    return best_total / len(texts), best_own / len(texts), passes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", required=True, help="a backbone folder (its tokenizer is what counts)")
    ap.add_argument("--encoder", required=True, help="a light-encoder folder (its tokenizer and limit count)")
    ap.add_argument("--n", type=int, default=300, help="mixed texts")
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    texts = mixed_texts(args.n, seed=0)
    for recipe in ("mean", "causal2vec"):
        encoder = args.encoder if recipe == "causal2vec" else None
        emb = Embedder.from_recipe(recipe, args.backbone, encoder, device="cpu", dtype="float32")
        cut = len(emb.pipeline.prepare(texts).truncated)
        total, own, passes = measure(emb, texts, args.reps)
        print(
            f"{recipe:<11} {total * 1e6:6.0f} us/text, of which dec2vec's own work (outside tokenizer calls) "
            f"{own * 1e6:4.0f}; {passes:.2f} tokenizer passes/text; {cut} of {len(texts)} cut"
        )


if __name__ == "__main__":
    main()
