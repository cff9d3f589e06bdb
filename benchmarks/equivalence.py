"""The fast encode path against the plain reference path, every recipe, fp32 and (on CUDA) bf16.

    python benchmarks/equivalence.py [--backbone DIR] [--encoder DIR] [--device cuda] [--out F]

Reference: ``Embedder.forward`` on small unsorted batches with the full padding mask (the path
training uses). Fast: ``Embedder.encode`` (sorted token-budget batches, background tokenization,
no mask on right-padded causal batches, the varlen kernel where it runs). The issue's bar: min
cosine >= 0.9999 in fp32 and >= 0.999 in bf16. The unit tests check the same on tiny models.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from dec2vec import Embedder, TruncationWarning, models, recipe_names
from dec2vec.bench.texts import read_texts


def reference(emb: Embedder, texts: list[str], batch: int = 8) -> torch.Tensor:
    rows = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            feats = {k: v.to(emb.device) for k, v in emb.tokenize(texts[i : i + batch]).items()}
            rows.append(torch.nn.functional.normalize(emb(feats).float(), dim=-1).cpu())
    return torch.cat(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default=models.DEFAULT_BACKBONE)
    ap.add_argument("--encoder", default=models.DEFAULT_ENCODER)
    ap.add_argument("--texts", default=".bench/texts-20k.jsonl")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore", TruncationWarning)
    texts = read_texts(Path(args.texts), args.n)
    rows = []
    cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    for dtype, bar in [("float32", 0.9999)] + ([("bfloat16", 0.999)] if cuda else []):
        for name in recipe_names():
            enc = args.encoder if name == "causal2vec" else None
            emb = Embedder.from_recipe(name, args.backbone, enc, device=args.device, dtype=dtype)
            ref = reference(emb, texts)
            for packed in sorted({False, emb.can_pack()}):
                fast = torch.from_numpy(emb.encode(texts, packed=packed, max_tokens=4096))
                cos = float((fast * ref).sum(-1).min())
                row = {"recipe": name, "dtype": dtype, "packed": packed, "min_cos": cos, "ok": cos >= bar}
                rows.append(row)
                print(f"{name:<11} {dtype:<9} packed={packed!s:<5} min cos {cos:.6f} {'ok' if cos >= bar else 'FAIL'}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    if not all(r["ok"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
