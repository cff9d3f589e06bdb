"""PyTorch against onnxruntime on the CPU, fp32 and int8 (and PyTorch bf16), on one model and the same texts.

Why a script and not a ``dec2vec bench`` row: onnxruntime needs an export first (half a minute to a
minute for the default model) and is an optional extra; this answers one question, whether the
ONNX path is faster than the PyTorch one here, and how far each mode's vectors move from fp32's.

    python benchmarks/cpu_backends.py --model causal2vec-smollm2-minilm --n 200 --out docs/bench/cpu/backends.md

Each row: texts/s over the mixed benchmark texts (``dec2vec.bench.texts``), after a warm-up on 16 of
them, and the cosine of each text's vector to PyTorch fp32's (min and mean).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def timed(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[float, np.ndarray]:
    encode(texts[:16])  # warm-up: kernels, caches, onnxruntime's first-run allocations
    start = time.perf_counter()
    vectors = encode(texts)
    return len(texts) / (time.perf_counter() - start), vectors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="causal2vec-smollm2-minilm")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", default=None, help="write the Markdown table here")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from dec2vec import Embedder
    from dec2vec.bench.texts import mixed_texts
    from dec2vec.export import OnnxEmbedder, export_onnx

    texts = mixed_texts(args.n)
    rows: list[tuple[str, float, np.ndarray, str]] = []
    for label, kwargs in (
        ("PyTorch fp32", {"dtype": "float32"}),
        ("PyTorch bf16", {"dtype": "bfloat16"}),
        ("PyTorch int8", {"dtype": "float32", "quantize": "int8"}),
    ):
        emb = Embedder.from_pretrained(args.model, device="cpu", **kwargs)
        speed, vectors = timed(emb.encode, texts)
        rows.append((label, speed, vectors, emb.quantization.summary() if emb.quantization else ""))
        print(f"{label}: {speed:.2f} texts/s", flush=True)
        del emb
    float_model = Embedder.from_pretrained(args.model, device="cpu", dtype="float32")
    for label, quantize in (("onnxruntime fp32", None), ("onnxruntime int8", "int8")):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = export_onnx(float_model, Path(tmp) / "onnx", source=args.model, quantize=quantize)
            took = time.perf_counter() - start
            runner = OnnxEmbedder(Path(tmp) / "onnx")
            speed, vectors = timed(runner.encode, texts)
            note = f"export {took:.0f} s, {result.onnx_bytes / 1e6:.0f} MB"
            if quantize:
                note += f", {len(runner.spec['int8']['kept_float'])} layers kept float"
            rows.append((label, speed, vectors, note))
            print(f"{label}: {speed:.2f} texts/s ({note})", flush=True)
            del runner
    ref = rows[0][2]
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    lines = [
        f"`python benchmarks/cpu_backends.py --model {args.model} --n {args.n}`; {args.n} mixed texts; "
        f"{machine}, torch {torch.__version__}\n\n",
        "| path | texts/s | × PyTorch fp32 | cosine to fp32 (min / mean) | note |\n",
        "|---|---:|---:|---|---|\n",
    ]
    for label, speed, vectors, note in rows:
        cos = np.sum(vectors * ref, axis=1)
        lines.append(
            f"| {label} | {speed:.2f} | {speed / rows[0][1]:.2f} | {cos.min():.4f} / {cos.mean():.4f} | {note} |\n"
        )
    table = "".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
