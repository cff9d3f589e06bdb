"""Multi-process training: sharding, negatives gathered with gradients, gradient averaging, torchrun.

The claim under test is that N processes compute what one process computes on the whole global
batch: the same loss, the same parameter gradients, and after a few optimizer steps the same
weights. Two real gloo processes run on CPU; the reference runs in the test process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dec2vec.embedder import Embedder
from dec2vec.train.distributed import DistContext, average_gradients, gather_with_grad
from dec2vec.train.losses import info_nce
from tests.conftest import WORDS

WORKER = Path(__file__).with_name("_ddp_worker.py")
CONTENT = WORDS[:40]


pytestmark = pytest.mark.usefixtures("one_thread")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("WORLD_SIZE", None)
    return env


def _sentence(rng: random.Random, n: int = 5) -> str:
    return " ".join(rng.choice(CONTENT) for _ in range(n))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- DistContext.shard --------------------------------------------------------------------------
@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
def test_shard_covers_every_row_once_in_order_with_balanced_sizes(world):
    for n in range(0, 30):
        slices = [DistContext(r, world).shard(n) for r in range(world)]
        rows = [i for s in slices for i in range(n)[s]]
        assert rows == list(range(n)), (n, world, slices)  # contiguous, in rank order, no overlap
        sizes = [len(range(n)[s]) for s in slices]
        assert max(sizes) - min(sizes) <= 1, (n, world, sizes)
        assert sizes == sorted(sizes, reverse=True)  # the larger shards come first


def test_single_process_context_is_a_no_op():
    ctx = DistContext()
    assert not ctx.enabled and ctx.is_main and ctx.shard(5) == slice(0, 5)
    x = torch.randn(3, 4, requires_grad=True)
    out, offset = gather_with_grad(x, ctx)
    assert out is x and offset == 0
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.full((2,), 3.0)
    average_gradients([p], ctx)
    assert torch.equal(p.grad, torch.full((2,), 3.0))
    ctx.barrier()  # no process group: must not raise


# ---- two gloo processes vs one process ----------------------------------------------------------
def _case(name: str, rng: random.Random, negatives: list[int], **extra) -> dict:
    n = len(negatives)
    return {
        "name": name,
        "recipe": "last-token",
        "temperature": 0.05,
        "instruction": "Query",
        "queries": [_sentence(rng) for _ in range(n)],
        "positives": [_sentence(rng, 6) for _ in range(n)],
        "negatives": [[_sentence(rng, 4) for _ in range(k)] for k in negatives],
        **extra,
    }


def _reference(case: dict, backbone: Path, encoder: Path) -> tuple[float, dict[str, torch.Tensor | None]]:
    """Loss and gradients of one process on the whole global batch."""
    torch.manual_seed(0)
    kwargs = {"encoder": str(encoder)} if case["recipe"] == "causal2vec" else {}
    emb = Embedder.from_recipe(case["recipe"], backbone, device="cpu", dtype="float32", **kwargs)
    for m in emb.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    emb.train()
    docs = case["positives"] + [n for negs in case["negatives"] for n in negs]
    q = emb(emb.tokenize(case["queries"], case["instruction"]))
    d = emb(emb.tokenize(docs))
    loss = info_nce(q, d, case["temperature"])
    loss.backward()
    return loss.item(), {n: (None if p.grad is None else p.grad.clone()) for n, p in emb.named_parameters()}


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_global_batch(tmp_path, tiny_backbone, tiny_encoder):
    rng = random.Random(0)
    cases = [
        # 8 queries, 4 per rank, one hard negative each: 8 documents per rank
        _case("even", rng, [1] * 8),
        # rank 0 holds 4 documents + 2 negatives, rank 1 holds 4 + 9: gather pads rank 0's rows
        _case("uneven", rng, [0, 1, 0, 1, 3, 2, 1, 3]),
        # the same shapes through gradient caching (chunks of 3: uneven chunks) across processes
        _case("uneven_cached", rng, [0, 1, 0, 1, 3, 2, 1, 3], chunk=3),
        # Causal2Vec: light encoder + projector head get their gradients through the gather too
        _case("causal2vec", rng, [1, 1, 2, 0, 1, 1, 0, 2], recipe="causal2vec", chunk=2),
    ]
    spec = {
        "rendezvous": str(tmp_path / "rendezvous"),
        "out": str(tmp_path),
        "backbone": str(tiny_backbone),
        "encoder": str(tiny_encoder),
        "cases": cases,
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), "2", str(spec_path)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = []
    deadline = time.monotonic() + 120
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, out) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"rank {rank} failed:\n{out[-4000:]}"

    for rank in range(2):  # the process group was freed by destroy_process_group, not left for exit
        refs = json.loads((tmp_path / f"group_refs.rank{rank}.json").read_text())
        assert refs["refs"] == 2, refs
    for case in cases:
        got = torch.load(tmp_path / f"{case['name']}.pt", weights_only=True)
        if case["name"].startswith("uneven"):  # the padding path of gather_with_grad really ran
            other = json.loads((tmp_path / f"{case['name']}.rank1.json").read_text())["local_docs"]
            assert (got["local_docs"], other) == (6, 13)
        loss, grads = _reference(case, tiny_backbone, tiny_encoder)
        assert got["loss"] == pytest.approx(loss, rel=1e-5), case["name"]
        assert set(got["grads"]) == set(grads)
        with_grad = 0
        for name, ref in grads.items():
            g = got["grads"][name]
            if ref is None:
                # a parameter that no rank used (the LM head) keeps no gradient, as in one process
                assert g is None, f"{case['name']}: {name} has a gradient in 2 processes but not in one"
                continue
            assert g is not None, f"{case['name']}: {name} lost its gradient"
            torch.testing.assert_close(
                g, ref, atol=1e-5, rtol=1e-4, msg=lambda m, n=name, c=case["name"]: f"{c} {n}: {m}"
            )
            with_grad += bool(ref.abs().sum() > 0)
        assert with_grad >= len(grads) // 2  # the comparison is not between vectors of zeros


# ---- torchrun end to end ------------------------------------------------------------------------
def _write_pairs(path: Path, n: int = 24) -> Path:
    rng = random.Random(1)
    with open(path, "w") as f:
        for _ in range(n):
            n_q, n_p, n_n = rng.randint(2, 6), rng.randint(3, 8), rng.randint(3, 8)  # padding differs per shard
            rec = {"query": _sentence(rng, n_q), "positive": _sentence(rng, n_p), "negatives": [_sentence(rng, n_n)]}
            f.write(json.dumps(rec) + "\n")
    return path


def _train_config(tmp: Path, out: str, backbone: Path, encoder: Path, data: Path) -> dict:
    return {
        "model": {"recipe": "causal2vec", "backbone": str(backbone), "encoder": str(encoder), "max_length": 64},
        "output_dir": str(tmp / out),
        "seed": 3,
        "device": "cpu",
        "checkpoint_every": 2,
        "keep_checkpoints": 5,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "stages": [
            {
                "objective": "contrastive",
                "data": [{"path": str(data), "instruction": "Query"}],
                "steps": 3,
                "batch_size": 8,
                "chunk_size": 2,
                "hard_negatives": 1,
                "lr": 2e-3,
                "head_lr": 5e-3,
                "weight_decay": 0.01,
                "warmup_steps": 1,
            }
        ],
    }


def _torchrun(config: Path, *extra: str, ok: bool = True) -> str:
    """`dec2vec train` under torchrun with 2 processes; fails with the tail of its output.

    ``ok``: whether the run must succeed (exit 0) or fail cleanly (exit non-zero, no worker killed by
    a signal). Either way, no worker may abort at exit."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "dec2vec.cli",
        "train",
        str(config),
        "--no-progress",
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )  # its own group, so a hang is killed with its workers
    try:
        out = proc.communicate(timeout=180)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "terminate called" not in out and "Signal 6" not in out, out[-6000:]  # aborted at teardown
    assert (proc.returncode == 0) == ok, out[-6000:]
    return out


@pytest.mark.slow
def test_torchrun_two_processes_train_like_one(tmp_path, tiny_backbone, tiny_encoder):
    import yaml
    from safetensors.torch import load_file

    from dec2vec.train.config import TrainConfig
    from dec2vec.train.trainer import Trainer

    data = _write_pairs(tmp_path / "pairs.jsonl")
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(_train_config(tmp_path, "ddp", tiny_backbone, tiny_encoder, data)))
    _torchrun(config)

    single = Trainer(
        TrainConfig.from_dict(_train_config(tmp_path, "single", tiny_backbone, tiny_encoder, data)), progress=False
    )
    single.run()

    ddp_run, single_run = tmp_path / "ddp", tmp_path / "single"
    # checkpoints every 2 steps plus the last one, written once (by rank 0)
    assert sorted(p.name for p in (ddp_run / "checkpoints").glob("step-*")) == ["step-0000002", "step-0000003"]
    for step in ("step-0000002", "step-0000003"):
        got = load_file(ddp_run / "checkpoints" / step / "trainable.safetensors")
        ref = load_file(single_run / "checkpoints" / step / "trainable.safetensors")
        assert set(got) == set(ref) and any("lora_B" in n for n in ref) and any("projector" in n for n in ref)
        for name, value in ref.items():
            torch.testing.assert_close(
                got[name], value, atol=1e-5, rtol=1e-4, msg=lambda m, n=name, s=step: f"{s} {n}: {m}"
            )
        assert any("lora_B" in n and v.abs().sum() > 0 for n, v in ref.items())  # training moved them
    ddp_log = (ddp_run / "log.csv").read_text().splitlines()
    single_log = (single_run / "log.csv").read_text().splitlines()
    assert len(ddp_log) == len(single_log) == 4  # header + one row per step, written once
    col = ddp_log[0].split(",").index("loss")
    for a, b in zip(ddp_log[1:], single_log[1:], strict=True):  # mean of per-rank losses = global loss
        assert float(a.split(",")[col]) == pytest.approx(float(b.split(",")[col]), rel=1e-5)

    texts = ["the cat sat on the mat", "a quick brown fox"]
    ddp_model = Embedder.from_pretrained(ddp_run / "model", device="cpu", dtype="float32")  # as trained
    single_model = Embedder.from_pretrained(single_run / "model", device="cpu", dtype="float32")
    torch.testing.assert_close(ddp_model.encode(texts), single_model.encode(texts), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_torchrun_resume_restores_every_process_rng(tmp_path, tiny_backbone, tiny_encoder):
    """With dropout on, each process draws its own masks; a resumed 2-process run must redraw them exactly."""
    import shutil

    import yaml
    from safetensors.torch import load_file

    data = _write_pairs(tmp_path / "pairs.jsonl")
    cfg = _train_config(tmp_path, "ddp", tiny_backbone, tiny_encoder, data)
    cfg["lora"]["dropout"] = 0.2
    cfg["stages"][0]["steps"] = 4
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    _torchrun(config)
    run = tmp_path / "ddp"
    final = load_file(run / "checkpoints" / "step-0000004" / "trainable.safetensors")
    # rewind to the checkpoint of step 2, as if both processes had been killed during step 3
    shutil.rmtree(run / "checkpoints" / "step-0000004")
    shutil.rmtree(run / "model")
    (run / "checkpoints" / "latest").write_text("step-0000002\n")
    _torchrun(config, "--resume")
    again = load_file(run / "checkpoints" / "step-0000004" / "trainable.safetensors")
    for name, value in final.items():
        torch.testing.assert_close(again[name], value, atol=0, rtol=0, msg=name)


@pytest.mark.slow
def test_torchrun_failing_run_exits_with_an_error_not_an_abort(tmp_path, tiny_backbone, tiny_encoder):
    """Every process raising (a bad second stage found up front) still destroys the group before exit."""
    import yaml

    data = _write_pairs(tmp_path / "pairs.jsonl")
    cfg = _train_config(tmp_path, "ddp", tiny_backbone, tiny_encoder, data)
    second = dict(cfg["stages"][0], name="second", data=[{"path": str(tmp_path / "missing.jsonl")}])
    cfg["stages"] = [dict(cfg["stages"][0], name="first"), second]
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = _torchrun(config, ok=False)
    assert "missing.jsonl" in out and "exitcode  : 2" in out, out[-6000:]  # the CLI's bad-input exit code
    # torchrun may stop the slower worker with SIGTERM (-15) once the first has failed; what must
    # never happen is an abort at teardown (-6)
    assert "exitcode  : -6" not in out, out[-6000:]


def test_close_destroys_only_a_group_the_context_created():
    import torch.distributed as dist

    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        DistContext(0, 1, owns_group=False).close()
        assert dist.is_initialized()  # the caller's group stays theirs
        DistContext(0, 1, owns_group=True).close()
        assert not dist.is_initialized()
        DistContext(0, 1, owns_group=True).close()  # idempotent
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
