"""Score a Causal2Vec model's h_eos mixed with its light encoder's vector on the selection split, for
several weights at once (how the default's ``encoder_weight`` was chosen; docs/eval/selection.md).

    python scripts/encoder_weight_grid.py MODEL $DEC2VEC_HOME/data/selection.jsonl sel-grid.json

Each text is embedded once, by the model pooled as ``eos+encoder``, and the two halves
(``embedding_parts``: h_eos and the light encoder's vector) are cached next to the output (``.npz``).
For encoder weight w, cos = (1 − w)·cos(h_eos) + w·cos(encoder), which is what ``pooling:
eos+encoder`` with ``encoder_weight: w`` computes. Writes one result per weight in the
layout of ``dec2vec validate --selection --out`` (``w0.4`` …; ``w0.0`` is eos-only), so
``scripts/selection_compare.py`` pairs them with any other scored model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dec2vec import Embedder
from dec2vec.foundations.files import write_atomic
from dec2vec.train.config import load_config
from dec2vec.train.selection import read_selection
from dec2vec.train.validate import retrieval_scores, unit_rows

WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="a saved Causal2Vec folder or shipped name")
    ap.add_argument("selection", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--config", default="configs/selection-instructions.yaml", help="each source's instruction")
    args = ap.parse_args()
    cfg = load_config(args.config, [])
    instr = {Path(str(s.path)).name.removesuffix(".train.jsonl"): s.instruction for st in cfg.stages for s in st.data}
    blocks = read_selection(args.selection)
    cache = args.out.with_suffix(".npz")
    if cache.exists():
        vec = dict(np.load(cache))
    else:
        emb = Embedder.from_pretrained(args.model)
        if emb.config.recipe != "causal2vec":
            raise SystemExit(f"{args.model}: recipe {emb.config.recipe}, not causal2vec")
        emb.recipe.options.pooling = "eos+encoder"  # both halves, each unit length times a weight's root
        parts = emb.embedding_parts
        vec = {}
        for name, bl in blocks.items():
            for j, block in enumerate(bl):
                qs, ds = [a for a, _ in block], [b for _, b in block]
                q = np.asarray(emb.encode(qs, instruction=instr.get(name), normalize=False))  # (n, d+e)
                d = np.asarray(emb.encode(ds, normalize=False))  # (n, d+e)
                for side, x in (("q", q), ("d", d)):
                    vec[f"{name}/{j}/{side}e"] = unit_rows(x[:, parts["eos"]])
                    vec[f"{name}/{j}/{side}m"] = unit_rows(x[:, parts["encoder"]])
            print(name, flush=True)
        np.savez(cache, **vec)
    models = {}
    for w in WEIGHTS:
        per = {}
        for name, bl in blocks.items():
            rr: list[float] = []
            for j in range(len(bl)):
                k = f"{name}/{j}"
                q = np.concatenate([np.sqrt(1 - w) * vec[f"{k}/qe"], np.sqrt(w) * vec[f"{k}/qm"]], axis=1)  # (n, d+e)
                d = np.concatenate([np.sqrt(1 - w) * vec[f"{k}/de"], np.sqrt(w) * vec[f"{k}/dm"]], axis=1)  # (n, d+e)
                rr += retrieval_scores(q, d)["rr"]
            a = np.asarray(rr)
            per[name] = {"recall_at_1": float((a == 1).mean()), "mrr": float(a.mean()), "rr": rr, "pairs": len(rr)}
        every = np.concatenate([np.asarray(s["rr"]) for s in per.values()])
        models[f"w{w}"] = {
            "model": f"{args.model} eos+encoder, encoder_weight {w}",
            "sources": per,
            "mean": {k: float(np.mean([s[k] for s in per.values()])) for k in ("recall_at_1", "mrr")},
            "pooled": {"recall_at_1": float((every == 1).mean()), "mrr": float(every.mean())},
            "n": int(len(every)),
        }
        print(f"encoder_weight {w}: pooled MRR {every.mean():.4f}", flush=True)
    write_atomic(args.out, json.dumps({"config": args.config, "n": None, "models": models}) + "\n")


if __name__ == "__main__":
    main()
