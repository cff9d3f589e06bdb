"""Encode throughput of saved models on the same texts, in one process, alternating (A B A B …).

    dec2vec bench --n 160 --write-texts mix.jsonl
    python scripts/compare_speed.py mix.jsonl heos=<h_eos folder> default=causal2vec-smollm2-minilm --rounds 2

Each model loads in its default inference dtype, is warmed on 8 texts, then times ``encode`` of all
texts; rounds alternate the models so that a drift of the machine hits both.
"""

from __future__ import annotations

import argparse
import json
import time

from dec2vec import Embedder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("texts", help="JSON lines with a 'text' field (dec2vec bench --write-texts)")
    ap.add_argument("models", nargs="+", metavar="NAME=MODEL")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    for r in range(args.rounds):
        for spec in args.models:
            name, _, ref = spec.partition("=")
            emb = Embedder.from_pretrained(ref or name)
            emb.encode(texts[:8])
            start = time.perf_counter()
            vectors = emb.encode(texts)
            rate = len(texts) / (time.perf_counter() - start)
            print(f"round {r + 1}  {name:<12} {rate:6.1f} texts/s  dim {vectors.shape[1]}  {emb.dtype}", flush=True)


if __name__ == "__main__":
    main()
