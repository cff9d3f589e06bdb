"""The training loop: stages in order, one optimizer step at a time, checkpointed and logged.

Reads top to bottom: build the model and decide what trains; for each stage build its objective,
data and optimizer; each step draws a global batch from one source, takes this process's shard,
lets the objective run forward and backward, averages gradients across processes, clips, steps,
logs, validates on the held-out split every ``validate_every`` steps (``valid.csv``, main process
only, the RNG streams untouched), and checkpoints every N steps. A non-finite loss skips its update
(and aborts after ``max_bad_steps`` in a row), so a bad batch never reaches the weights or a checkpoint.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device import pick_device
from ..embedder import Embedder
from ..errors import ConfigError, Dec2VecError
from ..pipeline import TruncationWarning
from .checkpoint import (
    TrainingState,
    clean_stale,
    latest_checkpoint,
    load_checkpoint,
    restore_rng,
    rng_state,
    save_checkpoint,
    write_atomic,
)
from .config import TrainConfig, config_fingerprint, expand_home
from .data import MixtureLoader
from .distributed import DistContext, all_mean, average_gradients, init_distributed
from .lora import add_lora, freeze, unfreeze
from .objectives import Objective, StepResult, build_objective
from .validate import (
    CURVE_FILE,
    append_curve_row,
    curve_columns,
    curve_row,
    kept_rng,
    read_pairs,
    trim_curve,
    valid_sources,
    validate,
)

log = logging.getLogger(__name__)

LOG_COLUMNS = [
    "step",
    "stage",
    "objective",
    "loss",
    "contrastive",
    "simcse",
    "mntp",
    "mar",
    "mrc",
    "distill_kl",
    "distill_mse",
    "distill_nce",
    "lr",
    "tokens",
    "tokens_per_s",
    "sec_per_step",
    "bad_steps",
    "bad_lines",
]
BUDGET_FILE = "config.before-budget-change.json"  # the checkpoint's config, kept when --resume changes the steps
PROGRESS_FILE = "progress.json"  # tokens and wall seconds at each checkpoint, restored on --resume


class TrainingError(Dec2VecError):
    """Training cannot go on (e.g. the loss stayed non-finite)."""


def build_embedder(cfg: TrainConfig, device: torch.device) -> Embedder:
    m = cfg.model
    if m.init:
        emb = Embedder.from_pretrained(str(expand_home(m.init)), device=device, dtype=m.dtype)  # $DEC2VEC_HOME/...
        if emb.config.recipe != m.recipe:
            raise ConfigError(f"model.init is a '{emb.config.recipe}' model but model.recipe is '{m.recipe}'")
        return emb
    kwargs: dict[str, Any] = {"encoder": m.encoder} if m.encoder else {}
    return Embedder.from_recipe(
        m.recipe,
        m.backbone,
        device=device,
        dtype=m.dtype,
        seed=cfg.seed,
        max_length=m.max_length,
        **kwargs,
        **m.recipe_options,
    )


def lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return f


class Trainer:
    def __init__(self, cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> None:
        self.cfg = cfg
        self.out = expand_home(cfg.output_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.resume = resume
        self.progress = progress
        self.device = pick_device(cfg.device)
        self.ctx: DistContext = init_distributed(self.device)
        if self.ctx.enabled and self.device.type == "cuda":
            import os

            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", self.ctx.rank)))
            torch.cuda.set_device(self.device)
        try:
            torch.manual_seed(cfg.seed)
            self.emb = build_embedder(cfg, self.device)
            self.backbone_peft: Any = None
            self.encoder_peft: Any = None
            self._set_trainable()
            if self.ctx.rank:  # same weights and LoRA init on every process, then independent dropout streams
                torch.manual_seed(cfg.seed + self.ctx.rank)
            self.emb.train()
            self.state = TrainingState(fingerprint=config_fingerprint(cfg))
            # counted over the whole run, across resumes (progress.json): valid.csv's x axes
            self.tokens_seen = 0.0
            self._wall_before = 0.0  # seconds trained by earlier processes of this run (resumed)
            self._t_start = time.perf_counter()
            self._valid_columns: list[str] = []
            self._check_stages()
        except BaseException:
            self.ctx.close(clean=False)
            raise

    def _check_stages(self) -> None:
        """Fail on any stage's config before training the first one (not 2,000 steps later)."""
        from .data import resolve_data_path

        if self.cfg.projector_init != "random" and "projector" not in self.emb.heads:
            raise ConfigError(f"projector_init: {self.cfg.projector_init} needs a recipe with a projector (causal2vec)")
        for i, stage in enumerate(self.cfg.stages):
            where = f"stages.{i} ('{stage.name}')"
            if stage.objective not in self.emb.recipe.losses:
                raise ConfigError(
                    f"{where}: recipe '{self.emb.recipe.name}' does not train with '{stage.objective}'; "
                    f"its objectives: {', '.join(self.emb.recipe.losses)}"
                )
            if stage.batch_size % self.ctx.world_size:
                # equal shards keep the mean of per-process losses equal to the loss of the global batch
                raise ConfigError(
                    f"{where}: batch_size {stage.batch_size} must be a multiple of the {self.ctx.world_size} processes"
                )
            for spec in stage.data:
                path = resolve_data_path(spec.path)
                if not path.is_file():
                    raise ConfigError(f"{where}: training data not found: {path}")
            if stage.objective == "distill":
                from .. import models

                if not isinstance(models.resolve(stage.teacher), Path):
                    raise ConfigError(
                        f"{where}: teacher '{stage.teacher}' must be a local folder or a registered model"
                    )
            if stage.objective == "simcse" and stage.dropout is None and not self.cfg.lora.dropout:
                log.warning("%s: SimCSE without dropout (stage dropout unset, LoRA dropout 0): the views match", where)
        if self.cfg.validate_every:
            sources = valid_sources(self.cfg)  # a missing valid split fails now, not at the first validation
            for src in sources:
                read_pairs(src.path, self.cfg.validate_pairs)
            self._valid_columns = curve_columns(sources)

    # ---- what trains ----------------------------------------------------------------------------
    def _set_trainable(self) -> None:
        cfg, emb = self.cfg, self.emb
        freeze(emb)
        if cfg.lora.enabled:
            lo = cfg.lora
            self.backbone_peft = add_lora(emb.backbone, lo.r, lo.alpha, lo.dropout, lo.target_modules)
        else:
            unfreeze(emb.backbone)
        unfreeze(emb.heads)
        if emb.encoder is not None:
            if cfg.encoder_mode == "full":
                unfreeze(emb.encoder)
            elif cfg.encoder_mode == "lora":
                lo = cfg.lora
                self.encoder_peft = add_lora(emb.encoder.model, lo.r, lo.alpha, lo.dropout)

    def train(self, mode: bool = True) -> None:
        self.emb.train(mode)
        if mode and self.emb.encoder is not None and self.cfg.encoder_mode == "frozen":
            self.emb.encoder.eval()  # a frozen encoder gives the same vector as at inference

    def trainable(self, objective: Objective) -> dict[str, nn.Parameter]:
        tree = nn.ModuleDict({"model": self.emb, "objective": objective.extra})
        return {n: p for n, p in tree.named_parameters() if p.requires_grad}

    # ---- the run --------------------------------------------------------------------------------
    def run(self) -> Path:
        """Train every stage (resuming if asked) and save the final model; returns its folder.

        The process group is destroyed before returning, on success, error or Ctrl-C alike
        (``DistContext.close`` says why), so a finished multi-process run exits 0.
        """
        try:
            out = self._run()
        except BaseException:
            self.ctx.close(clean=False)
            raise
        self.ctx.close(clean=True)
        return out

    def _run(self) -> Path:
        cfg = self.cfg
        self._t_start = time.perf_counter()
        if self.ctx.is_main and self.ckpt_dir.is_dir():
            clean_stale(self.ckpt_dir)
        restored = self._restore() if self.resume else None
        if restored is None:
            self._fresh_start()
            if cfg.projector_init == "lstsq":
                self._fit_projector()
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.out / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
        if restored is None and cfg.validate_every:
            self._validate(cfg.stages[0].name, self.emb.max_length, None)  # the curve's step 0
        bar = None
        if self.progress and self.ctx.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.total_steps, initial=self.state.global_step, desc="train", unit="step")
        try:
            for index in range(self.state.stage, len(cfg.stages)):
                self._run_stage(index, restored if index == self.state.stage else None, bar)
                restored = None
        finally:
            if bar is not None:
                bar.close()
        return self.export()

    def _run_stage(self, index: int, restored: dict[str, Any] | None, bar: Any) -> None:
        cfg, stage = self.cfg, self.cfg.stages[index]
        objective = build_objective(self.emb, stage, self.ctx, cfg.seed)
        loader = self._loader(index, objective.kind)
        params = self.trainable(objective)
        head_names = [n for n in params if n.startswith(("model.heads.", "objective."))]
        groups = [
            {"params": [p for n, p in params.items() if n not in head_names], "lr": stage.lr},
            {"params": [params[n] for n in head_names], "lr": stage.head_lr or stage.lr},
        ]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=stage.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(stage.warmup_steps, stage.steps))
        if restored is not None and self.state.stage == index and self.state.stage_step > 0:
            self._load_params(params, restored["params"])
            optimizer.load_state_dict(restored["optim"]["optimizer"])
            scheduler.load_state_dict(restored["optim"]["scheduler"])
            loader.load_state_dict(self.state.data)
            # last: building the objective above drew from the RNG
            restore_rng(restored["optim"]["rng"], self.ctx.rank, self.device)
        else:
            self.state.stage, self.state.stage_step = index, 0
        if hasattr(objective, "prepare"):
            self._prepare(objective, index, loader)
        old_max = self.emb.max_length
        if stage.max_length:
            self.emb.max_length = min(stage.max_length, old_max)
        self.train(True)
        plist = list(params.values())
        bad_in_row = 0
        try:
            while self.state.stage_step < stage.steps:
                t0 = time.perf_counter()
                spec, records = loader.batch(self.state.global_step, stage.batch_size)
                mine = records[self.ctx.shard(len(records))]
                optimizer.zero_grad(set_to_none=True)
                with warnings.catch_warnings(), self._autocast():
                    warnings.simplefilter("ignore", TruncationWarning)  # training inputs are cut to max_length
                    result = objective.step(mine, spec, self.state.global_step)
                average_gradients(plist, self.ctx)
                grad_norm = torch.nn.utils.clip_grad_norm_(plist, stage.max_grad_norm or math.inf)
                if self._all_finite(result, grad_norm):
                    optimizer.step()
                    bad_in_row = 0
                else:
                    optimizer.zero_grad(set_to_none=True)
                    self.state.bad_steps += 1
                    bad_in_row += 1
                    log.warning("step %d: non-finite loss or gradients, update skipped", self.state.global_step + 1)
                    if bad_in_row >= cfg.max_bad_steps:
                        raise TrainingError(
                            f"stage '{stage.name}': {bad_in_row} non-finite losses or gradients in a row at step "
                            f"{self.state.global_step + 1}; lower the learning rate or check the data. "
                            "The last checkpoint is intact."
                        )
                scheduler.step()
                self.state.global_step += 1
                self.state.stage_step += 1
                self.state.data = loader.state_dict()
                self.state.bad_lines[stage.name] = loader.skipped
                dt = time.perf_counter() - t0
                self._log(stage.name, stage.objective, result, scheduler.get_last_lr()[0], dt, loader, bar)
                end = self.state.stage_step == stage.steps
                # before the checkpoint: a checkpoint of step N implies valid.csv's row N was written
                if cfg.validate_every and (self.state.global_step % cfg.validate_every == 0 or end):
                    self._validate(stage.name, old_max, bar)
                every = cfg.checkpoint_every
                if (every and self.state.global_step % every == 0) or end:
                    self._checkpoint(params, optimizer, scheduler)
            skipped = sum(self.state.bad_lines.get(stage.name, {}).values())
            if skipped:
                log.warning(
                    "stage '%s': %d malformed data line(s) skipped: %s",
                    stage.name,
                    skipped,
                    self.state.bad_lines[stage.name],
                )
        finally:
            self.emb.max_length = old_max
            close = getattr(objective, "close", None)
            if close is not None:
                close()

    def _loader(self, index: int, kind: str) -> MixtureLoader:
        cfg = self.cfg
        return MixtureLoader(
            cfg.stages[index].data,
            kind,
            seed=cfg.seed + 1000 * index,
            buffer=cfg.shuffle_buffer,
            skip_bad=cfg.skip_bad,
            buckets=cfg.length_buckets,
        )

    def _autocast(self) -> Any:
        """bf16 autocast of the forward passes (``precision: bf16``); weights and optimizer stay fp32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    def _prepare(self, objective: Objective, index: int, loader: MixtureLoader) -> None:
        """Let the objective see every text the rest of the stage will draw (distillation encodes them
        with its teacher once, ahead of training). A copy of the loader replays the batches to come."""
        stage = self.cfg.stages[index]
        replay = self._loader(index, objective.kind)
        replay.load_state_dict(loader.state_dict())
        texts: list[str] = []
        for step in range(self.state.global_step, self.state.global_step + stage.steps - self.state.stage_step):
            _, records = replay.batch(step, stage.batch_size)
            texts.extend(objective.texts_of(records, stage.hard_negatives))  # type: ignore[attr-defined]
        self._on_main(lambda: objective.prepare(texts))  # type: ignore[attr-defined]
        self.ctx.barrier()
        if not self.ctx.is_main:
            objective.teacher.reload()  # type: ignore[attr-defined]

    def _fit_projector(self) -> None:
        """Causal2Vec warm start: fit the projector by least squares (``projector_init: lstsq``)."""
        from ..recipes.causal2vec import fit_projector

        first = self.cfg.stages[0]
        loader = MixtureLoader(
            first.data, "any", seed=self.cfg.seed + 777, buffer=self.cfg.shuffle_buffer, skip_bad=self.cfg.skip_bad
        )
        texts: list[str] = []
        step = 0
        while len(texts) < self.cfg.projector_init_texts:
            _, records = loader.batch(step, min(64, self.cfg.projector_init_texts))
            for r in records:
                texts.extend(t for t in (r.text, r.query, r.positive) if t)
            step += 1
        r2 = fit_projector(self.emb, texts[: self.cfg.projector_init_texts])
        log.info(
            "projector fitted by least squares on %d texts (R^2 %.3f)",
            min(len(texts), self.cfg.projector_init_texts),
            r2,
        )

    def _fresh_start(self) -> None:
        """A run from step 0 must not mix with an earlier run's checkpoints and log in the same folder."""
        if latest_checkpoint(self.ckpt_dir) is not None and not self.resume:
            raise ConfigError(
                f"{self.out} already holds checkpoints of a run: continue it with --resume, "
                "or choose another output_dir"
            )
        if self.ctx.is_main:
            for name in ("log.csv", CURVE_FILE, PROGRESS_FILE):
                (self.out / name).unlink(missing_ok=True)
        self.ctx.barrier()

    def _all_finite(self, result: StepResult, grad_norm: torch.Tensor) -> bool:
        """Loss and gradient norm finite on every process (a NaN gradient with a finite loss counts)."""
        finite = math.isfinite(float(result.loss)) and bool(torch.isfinite(grad_norm))
        ok = torch.tensor([1.0 if finite else 0.0], device=self.device)
        if self.ctx.enabled:
            import torch.distributed as dist

            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item() > 0)

    # ---- validation during the run (the learning curve) ------------------------------------------
    def _validate(self, stage: str, max_length: int, bar: Any) -> None:
        """Score the current model on the held-out split and append a row to ``valid.csv``.

        Main process only; the others wait in ``_on_main``'s all-reduce, and raise too if it fails.
        The model is embedded as it will be saved: eval mode, no autocast, the model's own token
        limit (not the stage's). Every RNG stream is put back afterwards, so a run with validation
        ends with the same weights as one without.
        """

        def run() -> None:
            t0 = time.perf_counter()
            stage_max = self.emb.max_length
            with kept_rng(self.device):
                self.emb.max_length = max_length
                self.train(False)
                try:
                    with torch.inference_mode(), warnings.catch_warnings():
                        warnings.simplefilter("ignore", TruncationWarning)
                        result = validate(self.emb, self.cfg, n=self.cfg.validate_pairs)
                finally:
                    self.emb.max_length = stage_max
                    self.train(True)
            step = self.state.global_step
            row = curve_row(step, stage, int(self.tokens_seen), self.wall_s, result)
            append_curve_row(self.out / CURVE_FILE, self._valid_columns, row)
            mean = result["mean"]
            took = time.perf_counter() - t0
            msg = (
                f"step {step}: validation MRR {mean['mrr']:.4f}, R@1 {mean['recall_at_1']:.4f} "
                f"({len(result['sources'])} sources x {self.cfg.validate_pairs} pairs, {took:.0f} s)"
            )
            log.info(msg)
            if bar is not None and not log.isEnabledFor(logging.INFO):
                bar.write(msg)

        self._on_main(run)

    @property
    def wall_s(self) -> float:
        """Seconds this run has spent so far, over every process that worked on it (resumes included)."""
        return self._wall_before + time.perf_counter() - self._t_start

    def _save_progress(self) -> None:
        path = self.out / PROGRESS_FILE
        step = self.state.global_step
        try:
            saved = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            saved = {}
        saved = {k: v for k, v in saved.items() if k.isdigit() and int(k) < step}
        saved[str(step)] = {"tokens": int(self.tokens_seen), "wall_s": round(self.wall_s, 1)}
        write_atomic(path, json.dumps(saved, indent=1) + "\n")

    def _load_progress(self, step: int) -> None:
        """Tokens and wall seconds at the checkpoint we resume from; counted from log.csv if progress.json
        lacks it (a run checkpointed before the file existed)."""
        path = self.out / PROGRESS_FILE
        try:
            entry = json.loads(path.read_text()).get(str(step)) if path.exists() else None
        except ValueError:
            entry = None
        if entry is not None:
            self.tokens_seen, self._wall_before = float(entry["tokens"]), float(entry["wall_s"])
            return
        rows = []
        if (self.out / "log.csv").exists():
            with open(self.out / "log.csv", newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        self.tokens_seen = float(sum(int(r["tokens"]) for r in rows))
        self._wall_before = sum(float(r["sec_per_step"]) for r in rows)
        if self.cfg.validate_every:
            log.warning(
                "%s has no entry for step %d: tokens and wall seconds counted from log.csv (%d rows)",
                path,
                step,
                len(rows),
            )

    # ---- checkpoints ----------------------------------------------------------------------------
    def _checkpoint(self, params: dict[str, nn.Parameter], optimizer: Any, scheduler: Any) -> None:
        rngs = [rng_state(self.device)]
        if self.ctx.enabled:  # every process's own RNG, so a resumed run continues each stream
            import torch.distributed as dist

            rngs = [None] * self.ctx.world_size  # type: ignore[list-item]
            dist.all_gather_object(rngs, {k: v.cpu() for k, v in rng_state(self.device).items()})

        def write() -> None:
            self._save_progress()  # first: a checkpoint that exists always has its counters
            save_checkpoint(
                self.ckpt_dir, self.state, dict(params), optimizer, scheduler, self.cfg.keep_checkpoints, rngs
            )

        self._on_main(write)

    def _on_main(self, fn: Any) -> None:
        """Run ``fn`` on the main process; every process raises if it failed (no one hangs in a barrier)."""
        error: BaseException | None = None
        if self.ctx.is_main:
            try:
                fn()
            except Exception as e:
                error = e
        if self.ctx.enabled:
            import torch.distributed as dist

            ok = torch.tensor([0.0 if error else 1.0], device=self.device)
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
            if ok.item() == 0 and error is None:
                raise TrainingError("the main process failed to write to disk; see its error")
        if error is not None:
            raise error

    def _restore(self) -> dict[str, Any] | None:
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            log.warning("--resume: no checkpoint in %s; starting from the beginning", self.ckpt_dir)
            return None
        state, params, optim = load_checkpoint(path, self.device)
        if state.fingerprint != self.state.fingerprint:
            if not self._budget_change_only(state):
                raise ConfigError(
                    f"{path} was written by a run with a different config (fingerprint {state.fingerprint}, now "
                    f"{self.state.fingerprint}); resume with the same config (only the step counts of the current "
                    "and later stages may change) or start a new output_dir"
                )
            state.fingerprint = self.state.fingerprint  # later resumes check against the new budget
        self.state = state
        if state.stage_step > 0 or state.stage > 0:
            self._load_params(None, params)  # earlier stages' results, when resuming into a later stage
        self._trim_log(state.global_step)
        if self.ctx.is_main:
            trim_curve(self.out / CURVE_FILE, state.global_step, self._valid_columns or None)
            self._load_progress(state.global_step)
        log.info("resumed from %s (step %d)", path, state.global_step)
        return {"params": params, "optim": optim}

    def _budget_change_only(self, state: TrainingState) -> bool:
        """Whether the new config differs from the checkpoint's only in the step counts of the current and
        later stages, each still ahead of where the run stands: a run's budget shortened or lengthened on
        --resume (``--set stages.0.steps=N``). The checkpoint's config is the run's saved config.json when
        its fingerprint matches the checkpoint's. The learning-rate schedule then decays to 0 at the new end
        from the resumed step on; the data order does not depend on the step count."""
        for saved in (self.out / "config.json", self.out / BUDGET_FILE):  # the latter: a change not yet checkpointed
            try:
                old = TrainConfig.from_dict(json.loads(saved.read_text()))
            except (OSError, ValueError, ConfigError):
                continue
            if config_fingerprint(old) == state.fingerprint:
                break
        else:
            return False
        if len(old.stages) != len(self.cfg.stages):
            return False
        was, now = old.to_dict(), self.cfg.to_dict()
        changes = []
        for i, (a, b) in enumerate(zip(was["stages"], now["stages"], strict=True)):
            if a["steps"] == b["steps"]:
                continue
            if i < state.stage or (i == state.stage and b["steps"] <= state.stage_step):
                return False  # a finished stage, or an end the run has already passed
            changes.append(f"stage {i} ({b.get('name') or b['objective']}): {a['steps']} -> {b['steps']} steps")
            a["steps"] = b["steps"]
        if not changes or config_fingerprint(TrainConfig.from_dict(was)) != self.state.fingerprint:
            return False
        if self.ctx.is_main and saved.name != BUDGET_FILE:
            write_atomic(self.out / BUDGET_FILE, json.dumps(old.to_dict(), indent=2) + "\n")
        log.warning("--resume with a new budget: %s; the learning rate decays to 0 at the new end", "; ".join(changes))
        return True

    def _load_params(self, params: dict[str, nn.Parameter] | None, saved: dict[str, torch.Tensor]) -> None:
        tree = dict(nn.ModuleDict({"model": self.emb}).named_parameters())
        if params is not None:
            tree.update(params)
        missing = [n for n in saved if n not in tree]
        for name, value in saved.items():
            if name in tree:
                with torch.no_grad():
                    tree[name].copy_(value)
        if missing and params is not None:
            raise ConfigError(f"checkpoint parameters not in this model: {missing[:3]}")

    # ---- logs -----------------------------------------------------------------------------------
    def _log(
        self, name: str, objective: str, r: StepResult, lr: float, dt: float, loader: MixtureLoader, bar: Any
    ) -> None:
        tokens = all_mean(float(r.tokens), self.ctx, self.device) * self.ctx.world_size
        self.tokens_seen += tokens
        loss = all_mean(float(r.loss), self.ctx, self.device)
        parts = {k: all_mean(v, self.ctx, self.device) for k, v in r.parts.items()}
        if not self.ctx.is_main:
            return
        step = self.state.global_step
        row = {
            "step": step,
            "stage": name,
            "objective": objective,
            "loss": f"{loss:.6g}",
            "lr": f"{lr:.3g}",
            "tokens": int(tokens),
            "tokens_per_s": f"{tokens / dt:.1f}",
            "sec_per_step": f"{dt:.3f}",
            "bad_steps": self.state.bad_steps,
            "bad_lines": sum(loader.skipped.values()),
            **{k: f"{v:.6g}" for k, v in parts.items()},
        }
        if step % self.cfg.log_every == 0 or step == self.cfg.total_steps:
            path = self.out / "log.csv"
            new = not path.exists()
            with open(path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
                if new:
                    w.writeheader()
                w.writerow(row)
            if self.cfg.tensorboard:
                self._tensorboard(step, loss, parts, lr, tokens / dt)
        if bar is not None:
            skipped = sum(loader.skipped.values())
            post = {k: f"{v:.4f}" for k, v in parts.items()} | {"tok/s": f"{tokens / dt:.0f}"}
            if skipped:
                post["bad_lines"] = str(skipped)
            bar.set_postfix(post, refresh=False)
            bar.update(1)

    def _tensorboard(self, step: int, loss: float, parts: dict[str, float], lr: float, tps: float) -> None:
        if not hasattr(self, "_tb"):
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError("tensorboard: true needs the tensorboard package: pip install tensorboard") from e
            self._tb = SummaryWriter(str(self.out / "tensorboard"))
        self._tb.add_scalar("loss/total", loss, step)
        for k, v in parts.items():
            self._tb.add_scalar(f"loss/{k}", v, step)
        self._tb.add_scalar("lr", lr, step)
        self._tb.add_scalar("tokens_per_s", tps, step)
        self._tb.flush()

    def _trim_log(self, step: int) -> None:
        """Drop log rows written after the checkpoint we resume from (the killed run's tail)."""
        path = self.out / "log.csv"
        if not self.ctx.is_main or not path.exists():
            return
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=LOG_COLUMNS)
        w.writeheader()
        w.writerows(rows)
        write_atomic(path, buf.getvalue())

    # ---- the result -----------------------------------------------------------------------------
    def export(self) -> Path:
        """Save the trained embedder to ``output_dir/model`` (LoRA merged, or kept as an adapter)."""
        dest = self.out / "model"
        self.emb.eval()
        if self.encoder_peft is not None:
            assert self.emb.encoder is not None
            self.emb.encoder.model = self.encoder_peft.merge_and_unload()
            self.encoder_peft = None
        adapter: Path | None = None
        if self.backbone_peft is not None:
            if self.cfg.merge_on_save:
                self.emb.backbone = self.backbone_peft.merge_and_unload()
            else:
                if self.ctx.is_main:
                    import tempfile

                    adapter = Path(tempfile.mkdtemp(prefix=".adapter.", dir=self.out))
                    self.backbone_peft.save_pretrained(adapter)
                self.emb.backbone = self.backbone_peft.unload()
                if adapter is not None:
                    self.emb.attach_adapter(adapter)
            self.backbone_peft = None

        def write() -> None:
            import shutil

            try:
                self.emb.save_pretrained(dest)
                summary = {
                    "steps": self.state.global_step,
                    "stages": [s.name for s in self.cfg.stages],
                    "encoder_mode": self.cfg.encoder_mode,
                    "bad_steps": self.state.bad_steps,
                    "bad_lines": self.state.bad_lines,
                    "versions": _versions(),
                }
                write_atomic(dest / "training.json", json.dumps(summary, indent=2) + "\n")
            finally:
                if adapter is not None:
                    shutil.rmtree(adapter, ignore_errors=True)

        self._on_main(write)
        return dest


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("dec2vec", "torch", "transformers", "peft"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    return Trainer(cfg, resume=resume, progress=progress).run()
