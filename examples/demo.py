"""The main job on the registry models: the default model (trained, shipped), every recipe, search and generation.

Run with `make demo`. It starts with the shipped trained Causal2Vec model (the default of
`dec2vec embed` and `dec2vec serve`) next to all-MiniLM-L6-v2: semantic search over a small corpus
and sentence similarities. The recipes after it are untrained (training comes with `dec2vec
train`), so their rankings show the plumbing and cost of each method, not its trained quality. The
last part builds a persistent LanceDB index of 300 Wikipedia Vital Articles summaries with the
default model in $DEC2VEC_HOME/demo-index-causal2vec-smollm2-minilm (a few minutes on 2 CPU cores
the first time; a rerun finds nothing to do), searches it, and answers a question from it with the
same model's LM head.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from transformers.utils import logging as hf_logging

from dec2vec import Embedder, recipe_names
from dec2vec.io import sidecar_path
from dec2vec.models import cache_home
from dec2vec.pretrained import DEFAULT_MODEL

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
GOLD = [0, 1, 4]  # the index in CORPUS of the sentence that answers each query
VITAL_N = 300  # summaries indexed: ~30k tokens, a few minutes on 2 CPU cores
SEARCHES = [  # (query, the article that answers it)
    ("Who wrote Pride and Prejudice?", "Pride and Prejudice"),
    ("What is the largest toothed whale?", "Sperm whale"),
    ("Which dam is on the Colorado River?", "Hoover Dam"),
]
QUESTION = "What is the tallest mountain in North America?"


PAIRS = [  # (sentence, sentence): the first two are paraphrases, the last unrelated
    ("A man is playing a guitar on stage.", "Someone performs music with a guitar in front of an audience."),
    ("The weather will be cold and rainy tomorrow.", "Expect chilly, wet conditions the next day."),
    ("The weather will be cold and rainy tomorrow.", "A man is playing a guitar on stage."),
]


def default_model_demo() -> None:
    """The default model (trained Causal2Vec, shipped) next to its own light encoder, all-MiniLM-L6-v2, on the same
    queries: what `dec2vec embed "text"` uses out of the box, and the strong small baseline it must beat."""
    from sentence_transformers import SentenceTransformer

    from dec2vec.models import weights_folder

    print(f"\n== the default model: {DEFAULT_MODEL} (trained Causal2Vec, docs/MODEL_CARD.md), next to all-MiniLM-L6-v2")
    emb = Embedder.from_pretrained(DEFAULT_MODEL)
    minilm = SentenceTransformer(str(weights_folder("all-minilm-l6-v2")), device="cpu")
    instruction = "Given a question, retrieve the passage that answers it"
    scores = {
        DEFAULT_MODEL: emb.encode(QUERIES, instruction=instruction) @ emb.encode(CORPUS).T,
        "all-MiniLM-L6-v2": minilm.encode(QUERIES, normalize_embeddings=True)
        @ minilm.encode(CORPUS, normalize_embeddings=True).T,
    }
    for qi, (q, gold) in enumerate(zip(QUERIES, GOLD, strict=True)):
        print(f"search {q!r}  (answer: {CORPUS[gold]!r})")
        for name, s in scores.items():
            order = np.argsort(-s[qi])
            mark = "right" if order[0] == gold else "WRONG"
            print(f"  {name:<26} {mark}: {s[qi, order[0]]:.3f} {CORPUS[order[0]][:50]!r}, next {s[qi, order[1]]:.3f}")
    for name, s in scores.items():
        print(f"{name}: top-1 correct {sum(int(np.argmax(s[i]) == g) for i, g in enumerate(GOLD))}/{len(GOLD)}")
    for a, b in PAIRS:
        va, vb = emb.encode([a, b])
        ma, mb = minilm.encode([a, b], normalize_embeddings=True)
        print(f"similarity {float(va @ vb):.3f} (MiniLM {float(ma @ mb):.3f})  {a!r} ~ {b!r}")


def main() -> None:
    default_model_demo()

    print("\n== recipes")
    subprocess.run([sys.executable, "-m", "dec2vec.cli", "recipes"], check=True)

    print("\n== every recipe on SmolLM2-135M-Instruct (+ all-MiniLM-L6-v2 for causal2vec), untrained")
    for name in recipe_names():
        emb = Embedder.from_recipe(name)
        t = time.perf_counter()
        docs = emb.encode(CORPUS)
        qs = emb.encode(QUERIES, instruction="Given a question, retrieve the passage that answers it")
        dt = time.perf_counter() - t
        hits = (qs @ docs.T).argmax(1)
        correct = sum(int(hits[i] == gold) for i, gold in enumerate(GOLD))
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
        facts = json.loads(sidecar_path(dest).read_text())  # which model and precision made the vectors
        api = Embedder.from_pretrained("causal2vec")  # the same name: the same default dtype as the CLI's
        cosine = float((vecs * api.encode(CORPUS)).sum(1).min())  # unit rows: the dot product is the cosine
        print(
            f"{dest.name}: shape {vecs.shape}, {facts['dtype']}, equal to the API's output: {cosine >= 0.9999} "
            f"(min cosine {cosine:.6f})"
        )
        api.save_pretrained(Path(tmp) / "c2v")
        again = Embedder.from_pretrained(Path(tmp) / "c2v")
        print(f"saved and reloaded: identical embeddings: {np.array_equal(again.encode(CORPUS), api.encode(CORPUS))}")

    index_demo(Embedder.from_pretrained(DEFAULT_MODEL), DEFAULT_MODEL)


def index_demo(emb: Embedder, name: str) -> None:
    """Index Vital Articles summaries (incremental: a rerun embeds nothing), then search and ask."""
    from dec2vec.search import Index, ask
    from dec2vec.search.vital import FILE_NAME, write_vital_corpus

    db = cache_home() / f"demo-index-{name}"
    print(f"\n== a persistent index of {VITAL_N} Wikipedia Vital Articles summaries ({name}) in {db}")
    corpus = write_vital_corpus(db / "sources" / FILE_NAME, VITAL_N)
    index = Index(db, emb, model_ref=name)
    report = index.build([corpus], progress=lambda m: print("  " + m, flush=True))
    print(report.summary())
    if report.chunks_embedded:
        print(
            f"  {report.chunks_embedded / report.embed_seconds:.2f} chunks/s, "
            f"{report.tokens_embedded / report.embed_seconds:.0f} tokens/s while embedding"
        )
    for query, answer in SEARCHES:
        hits = index.search(query, k=50)
        rank = next((i for i, h in enumerate(hits, start=1) if h.title == answer), None)
        print(f"\nsearch {query!r}: the answer's article {answer!r} ranks {rank or '> 50'}")
        for i, h in enumerate(hits[:3], start=1):
            print(f"  {i}. {h.score:.4f}  {h.title}: {h.text[:90]}…")
    t = time.perf_counter()
    result = ask(index, QUESTION, k=3, max_new_tokens=48)
    print(f"\nask {QUESTION!r} ({time.perf_counter() - t:.1f}s):\n  {result.text}")
    print("  sources: " + "; ".join(f"[{i}] {h.title}" for i, h in enumerate(result.sources, start=1)))
    print(f'same from the shell: dec2vec search --db {db} "{SEARCHES[0][0]}"; dec2vec ask --db {db} "{QUESTION}"')


if __name__ == "__main__":
    main()
