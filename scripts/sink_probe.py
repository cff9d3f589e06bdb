"""Does the Contextual token's final state depend on the text? (docs/RESULTS.md, attention sink)

    python scripts/sink_probe.py

Untrained Causal2Vec on the registry models, three paraphrase pairs: the cosine of h_ctx (and of
h_eos) within pairs and across pairs, with the Contextual token at position 0 (``bos_first:
false``; SmolLM2's tokenizer adds no BOS) and after a BOS token (``bos_first: true``). A state that
carries the text gives paraphrases a higher cosine than unrelated texts.
"""

from __future__ import annotations

import numpy as np

from dec2vec import Embedder

PAIRS = [
    ("A man is playing a guitar on stage.", "Someone performs music with a guitar."),
    ("The weather will be cold and rainy tomorrow.", "Expect chilly, wet conditions the next day."),
    ("Stock markets fell sharply today.", "Share prices dropped a lot this afternoon."),
]


def main() -> None:
    texts = [t for pair in PAIRS for t in pair]
    n = len(texts)
    same = np.zeros((n, n), dtype=bool)
    for i in range(0, n, 2):
        same[i, i + 1] = same[i + 1, i] = True
    other = ~same & ~np.eye(n, dtype=bool)
    print("| Contextual token at | pooled state | norm | cosine, paraphrases | cosine, unrelated |")
    print("|---|---|---:|---:|---:|")
    for bos_first in (False, True):
        for pooling in ("ctx", "eos"):
            emb = Embedder.from_recipe(
                "causal2vec", device="cpu", dtype="float32", pooling=pooling, bos_first=bos_first
            )
            raw = emb.encode(texts, normalize=False)
            unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
            cos = unit @ unit.T
            where = "position 1, after BOS" if bos_first else "position 0"
            print(
                f"| {where} | h_{pooling} | {np.linalg.norm(raw, axis=1).mean():.1f} | "
                f"{cos[same].mean():.3f} | {cos[other].mean():.3f} |"
            )


if __name__ == "__main__":
    main()
