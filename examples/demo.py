"""The main job on the default models: embed a corpus with every recipe, search it, and generate.

Run with `make demo`. The recipes here are untrained (training comes with `dec2vec train`), so the
rankings show the plumbing and cost of each method, not its trained quality.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from transformers.utils import logging as hf_logging

from dec2vec import Embedder, recipe_names

hf_logging.disable_progress_bar()

CORPUS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "The stock market fell after the central bank raised interest rates.",
    "A guitarist played a long solo at the concert last night.",
    "Penguins are flightless birds that live in the Southern Hemisphere.",
    "The recipe needs two cups of flour and a pinch of salt.",
]
QUERIES = ["Which famous landmark is in France?", "How do plants make food?", "birds that cannot fly"]


def main() -> None:
    print("== recipes")
    subprocess.run([sys.executable, "-m", "dec2vec.cli", "recipes"], check=True)

    print("\n== every recipe on SmolLM2-135M-Instruct (+ all-MiniLM-L6-v2 for causal2vec), untrained")
    for name in recipe_names():
        emb = Embedder.from_recipe(name)
        t = time.perf_counter()
        docs = emb.encode(CORPUS)
        qs = emb.encode(QUERIES, instruction="Given a question, retrieve the passage that answers it")
        dt = time.perf_counter() - t
        hits = (qs @ docs.T).argmax(1)
        correct = sum(int(hits[i] == gold) for i, gold in enumerate([0, 1, 4]))
        tokens = int(emb.tokenize(CORPUS)["attention_mask"].sum())
        print(
            f"{name:<11} dim={emb.embedding_dim:<5} corpus tokens={tokens:<5} {dt:5.2f}s  "
            f"top-1 correct {correct}/3  (e.g. {QUERIES[0]!r} -> {CORPUS[hits[0]][:40]!r})"
        )

    print("\n== the same backbone still generates")
    emb = Embedder.from_recipe("causal2vec")
    ids = emb.tokenizer("The capital of France is", return_tensors="pt").to(emb.device)
    out = emb.backbone.generate(**ids, max_new_tokens=6, do_sample=False)
    print("The capital of France is" + emb.tokenizer.decode(out[0, ids["input_ids"].shape[1] :]))

    print("\n== bulk embedding from the CLI, saved and reloaded")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "corpus.txt"
        src.write_text("\n".join(CORPUS) + "\n")
        dest = Path(tmp) / "corpus.npy"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dec2vec.cli",
                "embed",
                "--model",
                "causal2vec",
                "--input",
                str(src),
                "--output",
                str(dest),
            ],
            check=True,
        )
        vecs = np.load(dest)
        print(
            f"{dest.name}: shape {vecs.shape}, equal to the API's output: "
            f"{np.allclose(vecs, emb.encode(CORPUS), atol=1e-5)}"
        )
        emb.save_pretrained(Path(tmp) / "c2v")
        again = Embedder.from_pretrained(Path(tmp) / "c2v")
        print(f"saved and reloaded: identical embeddings: {np.array_equal(again.encode(CORPUS), emb.encode(CORPUS))}")


if __name__ == "__main__":
    main()
