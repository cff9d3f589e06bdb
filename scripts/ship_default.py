"""Ship a trained Causal2Vec run as dec2vec's default model (docs/RESULTS.md, "Shipping").

    python scripts/ship_default.py runs/repro/causal2vec/model --card docs/MODEL_CARD.md

Copies the run's trained parts (LoRA adapter, projector) into ``src/dec2vec/pretrained/<name>/``
as a slim folder (base weights by registry name), with the model card as its README and
``reference.json``: the full run folder's embeddings of a few fixed sentences, which the
integration tests compare the shipped model against, so a shipping or loading error shows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dec2vec import Embedder, pretrained

REFERENCE_TEXTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Penguins are flightless birds that live in the Southern Hemisphere.",
    "The stock market fell after the central bank raised interest rates.",
]
REFERENCE_INSTRUCTION = "Given a question, retrieve the passage that answers it"
REFERENCE_QUERY = "birds that cannot fly"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="trained causal2vec model folder (merge_on_save: false, frozen encoder)")
    ap.add_argument("--name", default=pretrained.DEFAULT_MODEL)
    ap.add_argument("--card", required=True, help="the model card (markdown); becomes the folder's README.md")
    args = ap.parse_args()
    emb = Embedder.from_pretrained(args.model, device="cpu", dtype="float32")
    docs = emb.encode(REFERENCE_TEXTS)
    query = emb.encode([REFERENCE_QUERY], instruction=REFERENCE_INSTRUCTION)
    reference = {
        "source": str(args.model),
        "device": "cpu",
        "dtype": "float32",
        "texts": REFERENCE_TEXTS,
        "embeddings": [[round(float(x), 7) for x in row] for row in docs],
        "query": {"text": REFERENCE_QUERY, "instruction": REFERENCE_INSTRUCTION},
        "query_embedding": [round(float(x), 7) for x in query[0]],
    }
    dest = pretrained.HERE / pretrained.SHIPPED[args.name]
    out = pretrained.export_slim(
        args.model, dest, card=Path(args.card).read_text(), extra={"reference.json": json.dumps(reference) + "\n"}
    )
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
