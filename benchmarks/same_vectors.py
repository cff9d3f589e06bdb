"""Do the API, the CLI and the server give one model's texts the same vectors at their default flags?

And how far apart are the float32 and the default (bfloat16 where the CPU runs it) vectors, the gap
the one dtype rule exists for (README, "One dtype rule"). Prints the minimum and mean cosine per
pair on examples/demo.py's texts; the CLI runs in its own process, the server on a background thread.

    python benchmarks/same_vectors.py [--model causal2vec-smollm2-minilm]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def demo_texts() -> list[str]:
    path = Path(__file__).resolve().parents[1] / "examples" / "demo.py"
    spec = importlib.util.spec_from_file_location("dec2vec_demo", path)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return [*demo.CORPUS, *demo.QUERIES, *(t for pair in demo.PAIRS for t in pair)]


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(c.min()), float(c.mean())


def main() -> None:
    import openai

    from dec2vec import Embedder
    from dec2vec.pretrained import DEFAULT_MODEL
    from dec2vec.serving.app import create_app
    from dec2vec.serving.server import BackgroundServer
    from dec2vec.serving.settings import ServerSettings
    from dec2vec.text_embedders import load_text_embedder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    texts = demo_texts()
    api = Embedder.from_pretrained(args.model)
    want = api.encode(texts)
    out = subprocess.run(
        [sys.executable, "-m", "dec2vec", "embed", "--model", args.model, "--json", *texts],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cli = np.array(json.loads(out.strip().splitlines()[-1]))
    app = create_app(load_text_embedder(args.model), ServerSettings(served_name="m"))
    with BackgroundServer(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=600)
        served = np.array([d.embedding for d in client.embeddings.create(model="m", input=texts).data])
    fp32 = Embedder.from_pretrained(args.model, dtype="float32").encode(texts)
    print(f"{args.model}: {len(texts)} texts; default dtype {str(api.dtype).removeprefix('torch.')}")
    for name, vecs in (("CLI vs API", cli), ("server vs API", served), ("float32 vs default", fp32)):
        low, mean = cosines(vecs, want)
        print(f"{name:<20} cosine min {low:.6f} mean {mean:.6f}")


if __name__ == "__main__":
    main()
