"""Parquet in -> parquet out with Ray Data actors, timed; the numbers in docs/RAY.md come from it.

    .venv/bin/python examples/ray_embed.py                       # 1000 Wikipedia summaries, `mean`, local Ray
    .venv/bin/python examples/ray_embed.py --input docs.parquet --output docs.embedded.parquet --model ./my-model
    python examples/ray_embed.py --address auto --input /shared/in --output /shared/out \\
        --model /shared/models/my-model --actors 4 --num-gpus 1 --batch-size 1024

Without ``--input`` it writes a small parquet file of real text first: lead summaries of Wikipedia
Vital Articles (the `wikipedia-vital-articles` evaluation source) with their title and topic.
``--compare`` also embeds the same texts with ``Embedder.encode`` in this process, with no Ray,
and checks that the vectors agree.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report from an example run


def wiki_parquet(dest: Path, rows: int) -> Path:
    """The first ``rows`` Vital Article summaries (title, topic, text), written to ``dest``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dec2vec.corpora.readers import WIKI_SUMMARIES, locate, read_wiki_summaries

    source = locate("wikipedia-vital-articles")
    summaries = read_wiki_summaries(source.root / WIKI_SUMMARIES).values()
    entries = [e for e in summaries if str(e.get("extract") or "").strip()][:rows]
    table = pa.table(
        {
            "title": [str(e["title"]) for e in entries],
            "topic": [str(e.get("topic") or "") for e in entries],
            "text": [str(e["extract"]) for e in entries],
        }
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, dest)
    return dest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, help="a .parquet file or a folder of them (default: Wikipedia summaries)")
    ap.add_argument("--output", type=Path, help="a .parquet file, or a folder mirroring the input files")
    ap.add_argument("--address", help="a running Ray cluster ('auto', 'ray://head:10001'); default: a local one")
    ap.add_argument("--model", default="mean", help="a saved dec2vec folder or a recipe name (default: mean)")
    ap.add_argument("--column", default="text")
    ap.add_argument("--rows", type=int, default=1000, help="summaries to embed when no --input is given")
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument("--num-cpus", type=float, default=1, help="CPUs each actor reserves (leave one for reading)")
    ap.add_argument("--num-gpus", type=float, default=0, help="GPUs each actor reserves")
    ap.add_argument("--threads", type=int, help="torch threads per actor (default: the machine's cores / actors)")
    ap.add_argument("--batch-size", type=int, default=128, help="rows per actor call")
    ap.add_argument("--max-tokens", type=int, help="padded tokens per forward pass (default: 1024 CPU, 32768 CUDA)")
    ap.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    ap.add_argument("--compare", action="store_true", help="also embed in-process without Ray and compare")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    work = Path(tempfile.gettempdir()) / "dec2vec-ray-example"
    src = args.input or wiki_parquet(work / f"wiki-{args.rows}.parquet", args.rows)
    dest = args.output or work / f"{src.stem}.embedded.parquet"

    import numpy as np
    import pyarrow.parquet as pq
    import ray
    import torch

    import dec2vec
    from dec2vec.integrations.ray import embed_parquet

    t_init = time.perf_counter()
    if args.address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=args.address, log_to_driver=False)
    else:  # a local instance on this machine's cores, without the dashboard
        ray.init(include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    init_s = time.perf_counter() - t_init
    cores = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
    threads = args.threads
    if threads is None and not args.num_gpus:  # CPU actors: share the cores (Ray alone would give num_cpus each)
        threads = max(1, cores // args.actors)

    arrivals: list[tuple[float, int]] = []
    result = embed_parquet(
        src,
        dest,
        args.model,
        column=args.column,
        num_actors=args.actors,
        batch_size=args.batch_size,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        threads=threads,
        max_tokens=args.max_tokens,
        overwrite=args.overwrite,
        progress=lambda n: arrivals.append((time.perf_counter(), n)),
    )
    ray.shutdown()
    wall = time.perf_counter() - t0
    if not result.rows:
        print(f"nothing to do: {', '.join(map(str, result.skipped))} already there (--overwrite redoes it)")
        return

    print(f"machine   {platform.machine()}, {os.cpu_count()} cores here; Ray cluster CPUs {cores}")
    versions = f"python {platform.python_version()}, dec2vec {dec2vec.__version__}, ray {ray.__version__}"
    print(f"versions  {versions}, torch {torch.__version__}")
    print(f"job       {result.rows} rows of {src} -> {dest}")
    print(
        f"          model {args.model}, {args.actors} actor(s) x {args.num_cpus:g} CPU / {args.num_gpus:g} GPU, "
        f"{threads} torch threads, batch {args.batch_size}"
    )
    print(f"ray.init  {init_s:.1f} s")
    print(f"embed     {result.seconds:.1f} s (actor start, model load, read, embed, write)")
    print(f"wall      {wall:.1f} s, script start to output written: {result.rows / wall:.1f} texts/s")
    if len(arrivals) > 1:  # from the first batch back (model loaded, pipeline warm) to the last
        span = arrivals[-1][0] - arrivals[0][0]
        rows = sum(n for _, n in arrivals[1:])
        print(f"steady    {rows / span:.1f} texts/s ({rows} rows after the first batch, in {span:.1f} s)")
    if args.compare:
        from dec2vec import Embedder

        texts = pq.read_table(src, columns=[args.column]).column(args.column).to_pylist()
        torch.set_num_threads(threads or torch.get_num_threads())
        t = time.perf_counter()
        emb = Embedder.from_pretrained(args.model)
        print(f"load      {time.perf_counter() - t:.1f} s to load the model in this process (an actor does the same)")
        emb.encode(texts[:8])  # warm-up
        t = time.perf_counter()
        want = emb.encode(texts, max_tokens=args.max_tokens)
        direct = time.perf_counter() - t
        got = np.array(pq.read_table(dest, columns=["embedding"]).column("embedding").to_pylist(), dtype=np.float32)
        cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
        tokens = sum(len(lay.ids) for lay in emb.layouts(texts))
        print(f"tokens    {tokens} LLM tokens, {tokens / len(texts):.1f} per text (template included, no padding)")
        print(
            f"direct    {len(texts) / direct:.1f} texts/s, {tokens / direct:.0f} tokens/s: Embedder.encode in-process, "
            f"no Ray ({direct:.1f} s)"
        )
        print(f"agree     min cosine Ray vs in-process {cos.min():.6f}")
        if cos.min() < 0.9999:
            sys.exit("the Ray output does not match Embedder.encode")


if __name__ == "__main__":
    main()
