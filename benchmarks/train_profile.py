"""Where a training step's time goes: the shipped config's step, split into its parts.

    python benchmarks/train_profile.py [--config configs/causal2vec-distill.yaml] [--steps 6] [--objective distill]
        [--data bible-kjv-web.train.jsonl wordnet-word-gloss.train.jsonl] [--set key=value ...] [--out FILE]

The real ``Trainer`` runs the config (its model, LoRA, precision, batch and token limit), with timers
wrapped around the functions a step calls, so each part's *exclusive* time is reported (a part's
time excludes the parts nested in it): reading the data, tokenising, the light encoder's forward,
the decoder's forward, the backward passes, the teacher cache, host->device copies, gradient
clipping, the optimizer, GradCache's two passes, and the rest (Python per-row work, the loss, logging).

``--data`` replaces the config's sources (a machine may not hold all of them). ``--objective distill``
distils from a *synthetic* teacher cache: each text's teacher vector is a fixed random unit vector
(768 wide, like all-mpnet-base-v2), written to a temporary cache before the first step and read
through the real ``TeacherCache`` lookups during the steps, so no teacher model runs. The first step
is warm-up and is left out. On CUDA every part boundary waits for the device (``synchronize``), so
each part is charged its own kernels; the steps are then a little slower than without the profile.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import platform
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from report import cpu_name, emit
from transformers.utils import logging as hf_logging

PARTS = (
    "data",
    "tokenise",
    "host->device",
    "light encoder fwd",
    "decoder fwd",
    "backward",
    "teacher cache",
    "clip grad",
    "optimizer",
    "other (python, loss, log)",
)


class Timers:
    """Exclusive wall time per part: a part nested in another is subtracted from its parent."""

    def __init__(self, sync: bool = False) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.stack: list[list[Any]] = []  # [name, start, time of children]
        self.on = False
        self.sync = sync  # CUDA runs asynchronously: wait for the device at every boundary, or parts blur

    def now(self) -> float:
        if self.sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        if not self.on:
            yield
            return
        self.stack.append([name, self.now(), 0.0])
        try:
            yield
        finally:
            name, start, children = self.stack.pop()
            took = self.now() - start
            self.total[name] += took - children
            if self.stack:
                self.stack[-1][2] += took

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*a: Any, **k: Any) -> Any:
            with self.part(name):
                return fn(*a, **k)

        setattr(owner, attr, timed)

    def hook_module(self, module: torch.nn.Module, name: str) -> None:
        """Time a module's forward calls (hooks, so a module called inside another is nested correctly)."""

        def pre(*_: Any) -> None:
            if self.on:
                self.stack.append([name, self.now(), 0.0])

        def post(*_: Any) -> None:
            if self.on and self.stack and self.stack[-1][0] == name:
                _, start, children = self.stack.pop()
                took = self.now() - start
                self.total[name] += took - children
                if self.stack:
                    self.stack[-1][2] += took

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


def synthetic_teacher(root: Path, dim: int = 768) -> Callable[..., Any]:
    """TeacherCache's constructor with a fixed random unit vector per text, kept under ``root``."""
    from dec2vec.train import teacher as teacher_mod

    original = teacher_mod.TeacherCache.__init__

    def encode(texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).standard_normal(dim)
            out[i] = v / np.linalg.norm(v)
        return out

    def init(self: Any, teacher: str, **kw: Any) -> None:
        kw.update(encode=encode, root=root)
        original(self, teacher, **kw)

    return init


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/causal2vec-distill.yaml")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--objective", default=None, help="replace the stage's objective (e.g. contrastive)")
    ap.add_argument("--data", nargs="*", default=None, help="replace the stage's data sources")
    ap.add_argument("--set", action="append", default=[], help="extra overrides")
    ap.add_argument("--out", default=None, help="append the Markdown table to this file")
    args = ap.parse_args()
    hf_logging.disable_progress_bar()

    from dec2vec import embedder as embedder_mod
    from dec2vec.attention import decoder_of
    from dec2vec.train import teacher as teacher_mod
    from dec2vec.train import trainer as trainer_mod
    from dec2vec.train.config import load_config
    from dec2vec.train.objectives import base as base_mod

    timers = Timers(sync=torch.cuda.is_available())
    sets = ["checkpoint_every=0", "validate_every=0", *args.set]
    if args.objective:
        sets.append(f"stages.0.objective={args.objective}")
    if args.data:
        sets.append("stages.0.data=[" + ", ".join(f"{{path: {p}}}" for p in args.data) + "]")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(args.config, [f"output_dir={tmp}/run", *sets])
        stage = cfg.stages[0]
        cfg.stages = [stage]
        stage.steps, stage.warmup_steps = args.steps, min(stage.warmup_steps, args.steps)
        if stage.objective == "distill":
            teacher_mod.TeacherCache.__init__ = synthetic_teacher(Path(tmp) / "teacher")  # type: ignore[method-assign]
            timers.wrap(teacher_mod.TeacherCache, "embeddings", "teacher cache")
        from dec2vec.train import data as data_mod

        timers.wrap(data_mod.MixtureLoader, "batch", "data")
        timers.wrap(embedder_mod.Embedder, "tokenize", "tokenise")
        timers.wrap(torch.autograd, "backward", "backward")
        timers.wrap(torch.nn.utils, "clip_grad_norm_", "clip grad")
        timers.wrap(torch.optim.AdamW, "step", "optimizer")
        timers.wrap(base_mod, "cached_backward", "gradcache (both passes)")
        original_features = base_mod.Objective.features

        def features(self: Any, texts: list[str], instruction: str | None = None) -> Any:
            feats = self.emb.tokenize(texts, instruction)
            with timers.part("host->device"):
                return {k: v.to(self.device) for k, v in feats.items()}

        base_mod.Objective.features = features  # type: ignore[method-assign]
        trainer = trainer_mod.Trainer(cfg, progress=False)
        if trainer.emb.encoder is not None:
            timers.hook_module(trainer.emb.encoder, "light encoder fwd")
        timers.hook_module(decoder_of(trainer.emb.backbone), "decoder fwd")
        step_times: list[float] = []
        original_step = trainer.runlog.step

        def on_step(state: Any, stage_: Any, result: Any, lr: float, dt: float, *rest: Any) -> Any:
            step_times.append(dt)
            if len(step_times) == 1:  # warm-up over: count from the next step
                timers.total.clear()
                timers.on = True
            return original_step(state, stage_, result, lr, dt, *rest)

        trainer.runlog.step = on_step  # type: ignore[method-assign]
        trainer.run()
        base_mod.Objective.features = original_features  # type: ignore[method-assign]
    measured = step_times[1:]
    n = len(measured)
    per_step = sum(measured) / n
    named = {k: v / n for k, v in timers.total.items()}
    named["other (python, loss, log)"] = max(0.0, per_step - sum(named.values()))
    order = [p for p in PARTS if p in named] + sorted(set(named) - set(PARTS))
    dev = trainer.device
    name = cpu_name() if dev.type == "cpu" else torch.cuda.get_device_name(dev)
    header = (
        f"\n### Training step profile: {Path(args.config).name}, objective {stage.objective}, "
        f"{dev.type} ({name}, {torch.get_num_threads()} threads), {time.strftime('%Y-%m-%d')}\n\n"
        f"torch {torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}; "
        f"batch {stage.batch_size}, max length {stage.max_length or cfg.model.max_length}, precision {cfg.precision}, "
        f"LoRA r={cfg.lora.r if cfg.lora.enabled else 'off'}, chunk_size {stage.chunk_size}, prefetch {cfg.prefetch}; "
        f"mean of {n} steps after a warm-up step: **{per_step:.3f} s/step**\n\n"
        "| part | s/step | share |\n|---|---|---|\n"
    )
    rows = "".join(f"| {p} | {named[p]:.4f} | {named[p] / per_step:.1%} |\n" for p in order)
    emit(header + rows, args.out)


if __name__ == "__main__":
    main()
