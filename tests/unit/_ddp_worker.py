"""One rank of the 2-process gloo test in ``test_train_distributed.py`` (run as a script, not collected).

Usage: ``python _ddp_worker.py RANK WORLD_SIZE SPEC.json``. The spec names a rendezvous file, an
output folder and a list of cases; each case is a global batch (queries, positives, hard negatives
per query). Every rank builds the same tiny embedder, takes its shard of the batch with
``DistContext.shard``, scores its queries against the documents of all ranks gathered with
``gather_with_grad``, runs backward (plain or gradient-cached), and averages gradients with
``average_gradients``. Rank 0 saves the averaged loss and gradients of each case for the parent
test to compare with a single-process run on the whole batch.
"""

from __future__ import annotations

import datetime
import gc
import json
import sys
import types
from pathlib import Path

import torch
import torch.distributed as dist


def zero_dropout(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def build(case: dict, spec: dict):
    from dec2vec.embedder import Embedder

    torch.manual_seed(0)
    kwargs = {"encoder": spec["encoder"]} if case["recipe"] == "causal2vec" else {}
    emb = Embedder.from_recipe(case["recipe"], spec["backbone"], device="cpu", dtype="float32", **kwargs)
    zero_dropout(emb)
    emb.train()
    return emb


def run_case(case: dict, spec: dict, ctx) -> dict:
    from dec2vec.train.distributed import all_mean, average_gradients, gather_with_grad
    from dec2vec.train.gradcache import cached_backward
    from dec2vec.train.losses import info_nce

    emb = build(case, spec)
    mine = ctx.shard(len(case["queries"]))
    queries = case["queries"][mine]
    docs = case["positives"][mine] + [n for negs in case["negatives"][mine] for n in negs]
    temperature, instruction, chunk = case["temperature"], case.get("instruction"), case.get("chunk", 0)

    def loss_fn(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        d_all, offset = gather_with_grad(d, ctx)  # (N_global, D)
        return info_nce(q, d_all, temperature, offset)

    if chunk:
        q_chunks = [emb.tokenize(queries[i : i + chunk], instruction) for i in range(0, len(queries), chunk)]
        d_chunks = [emb.tokenize(docs[i : i + chunk]) for i in range(0, len(docs), chunk)]
        loss = cached_backward(emb, [q_chunks, d_chunks], loss_fn, torch.device("cpu"))
    else:
        loss = loss_fn(emb(emb.tokenize(queries, instruction)), emb(emb.tokenize(docs)))
        loss.backward()
    params = dict(emb.named_parameters())
    average_gradients(list(params.values()), ctx)
    return {
        "loss": all_mean(float(loss), ctx, torch.device("cpu")),
        "local_docs": len(docs),
        "grads": {n: (None if p.grad is None else p.grad.clone()) for n, p in params.items()},
    }


def main(rank: int, world: int, spec_path: str) -> int:
    from dec2vec.train.distributed import DistContext

    torch.set_num_threads(1)
    spec = json.loads(Path(spec_path).read_text())
    dist.init_process_group(
        "gloo",
        init_method=f"file://{spec['rendezvous']}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        ctx = DistContext(dist.get_rank(), dist.get_world_size())
        out = Path(spec["out"])
        for case in spec["cases"]:
            result = run_case(case, spec, ctx)
            if ctx.is_main:
                torch.save(result, out / f"{case['name']}.pt")
            else:
                (out / f"{case['name']}.rank{rank}.json").write_text(json.dumps({"local_docs": result["local_docs"]}))
    finally:
        group = dist.group.WORLD
        dist.destroy_process_group()
    # nothing may keep the group alive past destroy_process_group (it would be torn down at interpreter
    # exit, where gloo can abort): only ``group`` and getrefcount's argument remain
    holders = [
        f"{f.__module__}.{f.__qualname__}"
        for f in gc.get_objects()
        if isinstance(f, types.FunctionType) and any(d is group for d in f.__defaults__ or ())
    ]
    refs = {"refs": sys.getrefcount(group), "defaults": holders}
    (Path(spec["out"]) / f"group_refs.rank{rank}.json").write_text(json.dumps(refs))
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
