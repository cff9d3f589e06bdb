"""Does the Contextual token's state depend on the text, layer by layer? (docs/RESULTS.md, the collapse)

    python scripts/sink_probe.py                                   # untrained, and the shipped model
    python scripts/sink_probe.py --models shipped=causal2vec-smollm2-minilm run=$DEC2VEC_HOME/runs/x/model \
        --pairs $DEC2VEC_HOME/data/bible-kjv-web.valid.jsonl --n 32 --every 3

For each model and layer: the norm of the state at the Contextual token, its largest dimension and
that dimension's share of the norm (a massive activation), the mean cosine between unrelated texts'
states (``spread``: 1 = the same state for every text) and how much more alike paraphrases are
(``gap``), the same two for EOS, and the share of the text tokens' attention that goes to BOS and to
the Contextual token. ``untrained`` is the recipe with a seeded random projector, ``bos_first`` on;
``NAME=A+B`` runs model A's backbone (its LoRA merged) with model B's projector, which tells whether the
adapter or the projector makes the Contextual token's position a sink.
"""

from __future__ import annotations

import argparse
import json

from dec2vec import Embedder
from dec2vec.diagnostics import trace_contextual_token

PAIRS = [
    ("A man is playing a guitar on stage.", "Someone performs music with a guitar."),
    ("The weather will be cold and rainy tomorrow.", "Expect chilly, wet conditions the next day."),
    ("Stock markets fell sharply today.", "Share prices dropped a lot this afternoon."),
    ("car", "automobile"),
    ("happy", "glad"),
    ("ocean", "sea"),
    ("physician", "doctor"),
    ("The committee postponed its decision until the spring meeting.", "The panel delayed the ruling to spring."),
]


def read_pairs(path: str, n: int) -> list[tuple[str, str]]:
    out = []
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            out.append((rec["query"], rec["positive"]))
            if len(out) == n:
                break
    return out


def load(model: str) -> Embedder:
    if model == "untrained":
        return Embedder.from_recipe("causal2vec", device="cpu", dtype="float32")
    return Embedder.from_pretrained(model, device="cpu", dtype="float32")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["untrained", "shipped=causal2vec-smollm2-minilm"])
    ap.add_argument("--pairs", default=None, help="a JSONL of {query, positive} (default: built-in pairs)")
    ap.add_argument("--n", type=int, default=32, help="pairs read from --pairs")
    ap.add_argument("--every", type=int, default=1, help="print every k-th layer (and the last)")
    args = ap.parse_args()
    pairs = read_pairs(args.pairs, args.n) if args.pairs else PAIRS
    for ref in args.models:
        name, _, model = ref.partition("=") if "=" in ref else (ref, "", ref)
        backbone_from, _, heads_from = model.partition("+")
        emb = load(backbone_from)
        if heads_from:  # the backbone (LoRA merged) of one model with the projector of another
            emb.heads.load_state_dict(load(heads_from).heads.state_dict())
        emb.eval()
        rows = trace_contextual_token(emb, pairs)
        print(f"\n### {name} ({len(pairs)} pairs)\n")
        print(
            "| layer | ‖h_ctx‖ | top dim | its share | ctx spread | ctx gap | ctx w/o massive dims: spread | gap "
            "| eos spread | eos gap | attn→BOS | attn→ctx |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            if r.layer % args.every and r.layer != len(rows) - 1:
                continue
            print(
                f"| {r.layer} | {r.ctx_norm:.1f} | {r.ctx_top_dim} | {r.ctx_top_share:.2f} | {r.ctx_spread:.3f} | "
                f"{r.ctx_pair_gap:+.3f} | {r.ctx_rest_spread:.3f} | {r.ctx_rest_pair_gap:+.3f} | "
                f"{r.eos_spread:.3f} | {r.eos_pair_gap:+.3f} | {r.attn_bos:.3f} | {r.attn_ctx:.3f} |"
            )


if __name__ == "__main__":
    main()
