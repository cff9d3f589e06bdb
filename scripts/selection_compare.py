"""Paired comparison of two models scored on the selection split, from their saved JSON (B − A).

    python scripts/selection_compare.py sel-a.json[:NAME] sel-b.json[:NAME]

The files are ``dec2vec validate --selection … --out FILE`` results (or this directory's
``encoder_weight_grid.py`` output); NAME picks a model when a file holds several. Prints the pooled
MRR difference with the paired bootstrap 95 % CI of ``dec2vec.train.selection.paired_pooled_difference``
and each source's difference with a CI over that source's queries (1000 replicates, seed 0).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from dec2vec.train.selection import paired_pooled_difference


def load(spec: str) -> dict[str, Any]:
    path, _, name = spec.partition(":")
    models = json.loads(open(path, encoding="utf-8").read())["models"]
    if name and name not in models:
        raise SystemExit(f"{path}: no model '{name}' (it has {', '.join(models)})")
    return models[name] if name else next(iter(models.values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    if {s: len(v["rr"]) for s, v in a["sources"].items()} != {s: len(v["rr"]) for s, v in b["sources"].items()}:
        raise SystemExit("the two results were not scored on the same split (sources or pair counts differ)")
    diff, lo, hi = paired_pooled_difference(a, b)
    print(f"pooled MRR A {a['pooled']['mrr']:.4f}  B {b['pooled']['mrr']:.4f}  B-A {diff:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    rng = np.random.default_rng(0)
    for source in a["sources"]:
        ra, rb = np.asarray(a["sources"][source]["rr"]), np.asarray(b["sources"][source]["rr"])
        d = rb - ra  # (n,) per-query differences
        boot = d[rng.integers(0, len(d), (1000, len(d)))].mean(axis=1)  # (1000,)
        lo_s, hi_s = np.percentile(boot, [2.5, 97.5])
        means = f"A {ra.mean():.3f}  B {rb.mean():.3f}  {d.mean():+.3f}"
        print(f"  {source:<28} n={len(d):>5}  {means} [{lo_s:+.3f}, {hi_s:+.3f}]")


if __name__ == "__main__":
    main()
