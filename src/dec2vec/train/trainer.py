"""The training loop: stages in order, one optimizer step at a time, checkpointed and logged.

Reads top to bottom: build the model and decide what trains; for each stage build its objective,
data and optimizer; each step draws a global batch from one source, takes this process's shard,
lets the objective run forward and backward, averages gradients across processes, clips, steps,
logs, validates on the held-out split every ``validate_every`` steps (``valid.csv``, main process
only, the RNG streams untouched), and checkpoints every N steps. A non-finite loss skips its update
(and aborts after ``max_bad_steps`` in a row), so a bad batch never reaches the weights or a checkpoint.

The loop is here; its parts live beside it: ``preflight.py`` (the whole run checked before the model loads),
``objectives/`` (each stage's step), ``runlog.py`` (log.csv, valid.csv rows, progress.json),
``resume.py`` (which checkpoint a resume continues, and whether it may) and ``export.py`` (the model).
"""

from __future__ import annotations

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
from ..errors import ConfigError, Dec2VecError
from ..foundations.files import write_atomic
from ..pipeline import TruncationWarning
from .checkpoint import TrainingState, clean_stale, latest_checkpoint, restore_rng, save_checkpoint
from .config import TrainConfig
from .config_files import expand_home
from .data import MixtureLoader, draw_texts
from .distributed import DistContext, all_true, average_gradients, init_distributed
from .export import hardware, training_summary, unwrap_lora, write_model
from .fingerprint import config_fingerprint
from .fsdp import full_norm, gather_for_export, load_sharded, save_sharded
from .lora import set_trainable
from .objectives import Objective, build_objective
from .preflight import preflight, valid_columns
from .resume import Restored, find_restore, load_params, rng_states
from .runlog import RunLog
from .setup import build_embedder, lr_lambda, ready_to_train
from .speed import BatchesAhead, make_preparer
from .validate import kept_rng, validate

log = logging.getLogger(__name__)


class TrainingError(Dec2VecError):
    """Training cannot go on (e.g. the loss stayed non-finite)."""


class Trainer:
    def __init__(self, cfg: TrainConfig, *, resume: bool = False, progress: bool = True, checked: bool = False) -> None:
        """``checked``: the caller ran ``preflight`` on ``cfg`` for this launch (``dec2vec train`` does, before
        the process group is joined), so it is not run, and its warnings not logged, a second time."""
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
            if not checked:
                preflight(cfg, self.ctx.world_size)  # the whole run, before any model loads
            torch.manual_seed(cfg.seed)
            self.emb = build_embedder(cfg, self.device)
            self.backbone_peft, self.encoder_peft = set_trainable(self.emb, cfg)  # peft wrappers, or None
            self.sharded = ready_to_train(self.emb, cfg, self.ctx)  # checkpointing, compile, FSDP
            if self.ctx.rank:  # same weights and LoRA init on every process, then independent dropout streams
                torch.manual_seed(cfg.seed + self.ctx.rank)
            self.emb.train()
            self.state = TrainingState(fingerprint=config_fingerprint(cfg))
            self.runlog = RunLog(self.out, cfg, self.ctx, self.device, valid_columns(cfg, self.emb))  # logs, counters
        except BaseException:
            self.ctx.close(clean=False)
            raise

    # ---- what trains ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> None:
        self.emb.train(mode)
        if mode and self.emb.encoder is not None and self.cfg.encoder_mode == "frozen":
            self.emb.encoder.eval()  # a frozen encoder gives the same vector as at inference

    def tree(self, objective: Objective) -> nn.Module:
        return nn.ModuleDict({"model": self.emb, "objective": objective.extra})

    def trainable(self, objective: Objective) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.tree(objective).named_parameters() if p.requires_grad}

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
        self.runlog.t_start = time.perf_counter()
        if self.ctx.is_main and self.ckpt_dir.is_dir():
            clean_stale(self.ckpt_dir)
        restored = self._restore() if self.resume else None
        if restored is None:
            self._fresh_start()
            if cfg.projector_init == "lstsq":
                self._fit_projector()
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.out / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n", durable=True)
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

    def _run_stage(self, index: int, restored: Restored | None, bar: Any) -> None:
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
            if self.sharded:
                load_sharded(restored.path, self.tree(objective), optimizer)
            else:
                load_params(self.emb, params, restored.params)
                optimizer.load_state_dict(restored.optim["optimizer"])
            scheduler.load_state_dict(restored.optim["scheduler"])
            loader.load_state_dict(self.state.data)
            # last: building the objective above drew from the RNG
            restore_rng(restored.optim["rng"], self.ctx.rank, self.device)
        else:
            self.state.stage, self.state.stage_step = index, 0
        if objective.prepares_ahead:
            self._prepare(objective, index, loader)
        old_max = self.emb.max_length
        if stage.max_length:
            self.emb.max_length = min(stage.max_length, old_max)
        self.train(True)
        plist = list(params.values())
        bad_in_row = 0
        pin = self.device.type == "cuda"
        prepare = make_preparer(loader, stage.batch_size, self.ctx, objective, pin)
        ahead = BatchesAhead(prepare, self.state.stage_step, stage.steps, cfg.prefetch)
        try:
            while self.state.stage_step < stage.steps:
                t0 = time.perf_counter()
                item = ahead.get(self.state.stage_step)  # read and tokenised while the last step ran
                spec, mine, objective.ahead = item.spec, item.records, item.features
                optimizer.zero_grad(set_to_none=True)
                with warnings.catch_warnings(), self._autocast():
                    warnings.simplefilter("ignore", TruncationWarning)  # training inputs are cut to max_length
                    result = objective.step(mine, spec, self.state.global_step)
                if not self.sharded:  # FSDP's reduce-scatter has averaged them
                    average_gradients(plist, self.ctx)
                grad_norm = full_norm(torch.nn.utils.clip_grad_norm_(plist, stage.max_grad_norm or math.inf))
                finite = math.isfinite(float(result.loss)) and bool(torch.isfinite(grad_norm))
                if all_true(finite, self.ctx, self.device):  # a NaN gradient with a finite loss counts too
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
                self.state.data = item.loader_state
                self.state.bad_lines[stage.name] = item.skipped
                dt = time.perf_counter() - t0
                self.runlog.step(self.state, stage, result, scheduler.get_last_lr()[0], dt, item.skipped, bar)
                end = self.state.stage_step == stage.steps
                # before the checkpoint: a checkpoint of step N implies valid.csv's row N was written
                if cfg.validate_every and (self.state.global_step % cfg.validate_every == 0 or end):
                    ahead.wait()  # validation tokenises at another token limit
                    self._validate(stage.name, old_max, bar)
                every = cfg.checkpoint_every
                if (every and self.state.global_step % every == 0) or end:
                    self._checkpoint(params, optimizer, scheduler, self.tree(objective))
            skipped = sum(self.state.bad_lines.get(stage.name, {}).values())
            if skipped:
                log.warning(
                    "stage '%s': %d malformed data line(s) skipped: %s",
                    stage.name,
                    skipped,
                    self.state.bad_lines[stage.name],
                )
        finally:
            ahead.close()
            self.emb.max_length = old_max
            objective.ahead = {}
            objective.close()

    def _loader(self, index: int, kind: str) -> MixtureLoader:
        """The stage's batches: they depend on its data seed and its own step only, not on the stages
        before it, so a stage shared between runs (``base_stage``, same ``data_seed``) draws the same ones."""
        cfg = self.cfg
        stage = cfg.stages[index]
        return MixtureLoader(
            stage.data,
            kind,
            seed=cfg.seed + 1000 * index if stage.data_seed is None else stage.data_seed,
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
        for step in range(self.state.stage_step, stage.steps):
            _, records = replay.batch(step, stage.batch_size)
            texts.extend(objective.texts_of(records, stage.hard_negatives))
        self._on_main(lambda: objective.prepare(texts))
        self.ctx.barrier()
        if not self.ctx.is_main:
            objective.prepared()

    def _fit_projector(self) -> None:
        """Causal2Vec warm start: fit the projector by least squares (``projector_init: lstsq``)."""
        from ..recipes.causal2vec import fit_projector

        cfg = self.cfg
        loader = MixtureLoader(
            cfg.stages[0].data, "any", seed=cfg.seed + 777, buffer=cfg.shuffle_buffer, skip_bad=cfg.skip_bad
        )
        texts = draw_texts(loader, cfg.projector_init_texts)
        r2 = fit_projector(self.emb, texts)
        log.info("projector fitted by least squares on %d texts (R^2 %.3f)", len(texts), r2)

    def _fresh_start(self) -> None:
        """A run from step 0 must not mix with an earlier run's checkpoints and log in the same folder."""
        if latest_checkpoint(self.ckpt_dir) is not None and not self.resume:
            raise ConfigError(
                f"{self.out} already holds checkpoints of a run: continue it with --resume, "
                "or choose another output_dir"
            )
        self.runlog.clear()
        self.ctx.barrier()

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
            self.runlog.validation(step, stage, result)
            mean = result["mean"]
            took = time.perf_counter() - t0
            msg = (
                f"step {step}: validation MRR {mean['mrr']:.4f}, R@1 {mean['recall_at_1']:.4f} "
                f"({len(result['sources'])} sources x {self.cfg.validate_pairs} pairs, {took:.0f} s)"
                + "".join(f"; {k} MRR {v['mrr']:.4f} spread {v['spread']:.3f}" for k, v in result["parts"].items())
            )
            log.info(msg)
            if bar is not None and not log.isEnabledFor(logging.INFO):
                bar.write(msg)

        self._on_main(run)

    # ---- checkpoints ----------------------------------------------------------------------------
    def _checkpoint(self, params: dict[str, nn.Parameter], optimizer: Any, scheduler: Any, tree: nn.Module) -> None:
        rngs = rng_states(self.ctx, self.device)  # every process's own, so a resumed run continues each stream
        keep = self.cfg.keep_checkpoints

        def first() -> None:  # a checkpoint that exists always has its counters
            self.runlog.save_progress(self.state.global_step)

        if self.sharded:  # every process writes its shard
            return save_sharded(
                self.ckpt_dir, self.state, tree, optimizer, scheduler, keep, rngs, self.ctx, self.device, first
            )

        def write() -> None:
            first()
            save_checkpoint(self.ckpt_dir, self.state, dict(params), optimizer, scheduler, keep, rngs)

        self._on_main(write)

    def _on_main(self, fn: Any) -> None:
        """Run ``fn`` on the main process; every process raises if it failed (no one hangs in a barrier)."""
        error: BaseException | None = None
        if self.ctx.is_main:
            try:
                fn()
            except Exception as e:
                error = e
        if not all_true(error is None, self.ctx, self.device) and error is None:
            raise TrainingError("the main process failed to write to disk; see its error")
        if error is not None:
            raise error

    def _restore(self) -> Restored | None:
        """Continue from the latest checkpoint (``resume.find_restore`` says whether this config may):
        its counters, earlier stages' parameters, and the logs cut back to its step."""
        found = find_restore(self.ckpt_dir, self.out, self.cfg, self.state.fingerprint, self.device, self.ctx.is_main)
        if found is None:
            return None
        self.state = state = found.state
        if state.stage_step > 0 or state.stage > 0:
            load_params(self.emb, None, found.params)  # earlier stages' results, when resuming into a later stage
        self.runlog.trim(state.global_step)  # log.csv and valid.csv
        if self.ctx.is_main:
            self.runlog.load_progress(state.global_step)
        log.info("resumed from %s (step %d)", found.path, state.global_step)
        return found

    # ---- the result -----------------------------------------------------------------------------
    def export(self) -> Path:
        """Save the trained embedder to ``output_dir/model`` (LoRA merged, or kept as an adapter)."""
        dest = self.out / "model"
        main_out = self.out if self.ctx.is_main else None  # where the main process keeps a temporary adapter
        emb, adapter = self.emb, None
        if self.sharded:  # no LoRA under FSDP: the weights, gathered on the main process (None elsewhere)
            fresh = lambda: build_embedder(self.cfg, torch.device("cpu"))  # noqa: E731
            emb = gather_for_export(self.emb, fresh, self.ctx)  # type: ignore[assignment]
        else:
            adapter = unwrap_lora(emb, self.backbone_peft, self.encoder_peft, self.cfg.merge_on_save, main_out)
        self.backbone_peft = self.encoder_peft = None
        summary = training_summary(self.cfg, self.state, _versions(), hardware(self.device, self.ctx.world_size))
        self._on_main(lambda: write_model(emb, dest, summary, adapter))
        return dest


def _versions() -> dict[str, str]:
    """Library versions for training.json (one provenance record for runs, evaluations and benchmarks)."""
    from ..foundations.provenance import library_versions

    return library_versions()


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True, checked: bool = False) -> Path:
    return Trainer(cfg, resume=resume, progress=progress, checked=checked).run()
