"""Make a Causal2Vec pooling-ablation variant of a trained model without copying its base weights.

    python scripts/pooling_variant.py runs/repro/causal2vec/model runs/repro/causal2vec-eos --pooling eos

The variant is a slim folder (the run's adapter and projector; backbone and encoder by registry
name) whose ``recipe_options.pooling`` is changed: the same trained weights, pooled as h_eos only,
h_ctx only, their concatenation, or h_eos beside the light encoder's vector (``eos+encoder``,
weighted by ``--encoder-weight``). Used for the pooling ablation in docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json

from dec2vec import pretrained
from dec2vec.recipes.causal2vec import POOLINGS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("model", help="a trained causal2vec model folder saved with merge_on_save: false")
    ap.add_argument("dest")
    ap.add_argument("--pooling", required=True, choices=POOLINGS)
    ap.add_argument("--encoder-weight", type=float, default=None, help="eos+encoder: the light encoder's share")
    args = ap.parse_args()
    out = pretrained.export_slim(args.model, args.dest)
    cfg = json.loads((out / "dec2vec.json").read_text())
    if cfg["recipe"] != "causal2vec":
        raise SystemExit(f"{args.model}: recipe is {cfg['recipe']}, not causal2vec")
    cfg["recipe_options"]["pooling"] = args.pooling
    if args.encoder_weight is not None:
        cfg["recipe_options"]["encoder_weight"] = args.encoder_weight
    (out / "dec2vec.json").write_text(json.dumps(cfg, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
