"""The run's log: ``log.csv`` (a row per logged step), ``valid.csv`` (a row per validation, the learning
curve; its format is ``validate.py``'s), ``progress.json`` (the counters at each checkpoint) and, if asked,
TensorBoard events; and the counters they record, summed over every process and resume.

These files are read back on ``--resume`` (``trim``, ``load_progress``), so their formats are part of a
run in progress: change them only together with a reader of the old ones.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..foundations.files import write_atomic
from .checkpoint import TrainingState
from .config import StageConfig, TrainConfig
from .distributed import DistContext, all_mean
from .objectives import StepResult, get_objective, objective_names
from .validate import CURVE_FILE, append_curve_row, curve_row, trim_curve

log = logging.getLogger(__name__)

LOG_FILE = "log.csv"
PROGRESS_FILE = "progress.json"  # tokens and wall seconds at each checkpoint, restored on --resume
LOG_HEAD = ["step", "stage", "objective", "loss"]
LOG_TAIL = ["lr", "tokens", "tokens_per_s", "sec_per_step", "bad_steps", "bad_lines"]


def log_columns() -> list[str]:
    """log.csv's header: the step, then every registered objective's loss parts in registration order
    (contrastive, simcse, mntp, mar, mrc, distill_kl, distill_mse, distill_nce for the built-in ones),
    then the rate and counters."""
    parts = [p for name in objective_names() for p in get_objective(name).parts]
    return list(dict.fromkeys([*LOG_HEAD, *parts, *LOG_TAIL]))


class RunLog:
    """What a run writes as it goes, and what it has counted so far: the real training tokens and the
    wall seconds (``valid.csv``'s x axes), over the whole run, resumes included."""

    def __init__(
        self, out: Path, cfg: TrainConfig, ctx: DistContext, device: torch.device, valid_columns: list[str]
    ) -> None:
        self.out, self.cfg, self.ctx, self.device = out, cfg, ctx, device
        self.valid_columns = valid_columns  # valid.csv's header (empty without validate_every)
        self.tokens_seen = 0.0
        self.wall_before = 0.0  # seconds trained by earlier processes of this run (resumed)
        self.t_start = time.perf_counter()
        self._tb: Any = None

    @property
    def wall_s(self) -> float:
        """Seconds this run has spent so far, over every process that worked on it (resumes included)."""
        return self.wall_before + time.perf_counter() - self.t_start

    # ---- log.csv and TensorBoard ----------------------------------------------------------------
    def step(
        self,
        state: TrainingState,
        stage: StageConfig,
        r: StepResult,
        lr: float,
        dt: float,
        bad_lines: dict[str, int],
        bar: Any,
    ) -> None:
        """Count and log the step ``state`` has just reached, which took ``dt`` seconds; ``bad_lines``: the
        stage's skipped data lines by source. Every process calls it: the counts are averaged across them."""
        tokens = all_mean(float(r.tokens), self.ctx, self.device) * self.ctx.world_size
        self.tokens_seen += tokens
        loss = all_mean(float(r.loss), self.ctx, self.device)
        parts = {k: all_mean(v, self.ctx, self.device) for k, v in r.parts.items()}
        if not self.ctx.is_main:
            return
        step, skipped = state.global_step, sum(bad_lines.values())
        row = {
            "step": step,
            "stage": stage.name,
            "objective": stage.objective,
            "loss": f"{loss:.6g}",
            "lr": f"{lr:.3g}",
            "tokens": int(tokens),
            "tokens_per_s": f"{tokens / dt:.1f}",
            "sec_per_step": f"{dt:.3f}",
            "bad_steps": state.bad_steps,
            "bad_lines": skipped,
            **{k: f"{v:.6g}" for k, v in parts.items()},
        }
        if step % self.cfg.log_every == 0 or step == self.cfg.total_steps:
            path = self.out / LOG_FILE
            new = not path.exists()
            with open(path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=log_columns())
                if new:
                    w.writeheader()
                w.writerow(row)
            if self.cfg.tensorboard:
                self._tensorboard(step, loss, parts, lr, tokens / dt)
        if bar is not None:
            post = {k: f"{v:.4f}" for k, v in parts.items()} | {"tok/s": f"{tokens / dt:.0f}"}
            if skipped:
                post["bad_lines"] = str(skipped)
            bar.set_postfix(post, refresh=False)
            bar.update(1)

    def _tensorboard(self, step: int, loss: float, parts: dict[str, float], lr: float, tps: float) -> None:
        if self._tb is None:
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

    def validation(self, step: int, stage: str, result: dict[str, Any]) -> None:
        """Append a validation's scores to ``valid.csv`` with the counters so far (main process)."""
        row = curve_row(step, stage, int(self.tokens_seen), self.wall_s, result)
        append_curve_row(self.out / CURVE_FILE, self.valid_columns, row)

    def clear(self) -> None:
        """A run from step 0: drop an earlier run's logs in the same folder (main process)."""
        if self.ctx.is_main:
            for name in (LOG_FILE, CURVE_FILE, PROGRESS_FILE):
                (self.out / name).unlink(missing_ok=True)

    def trim(self, step: int) -> None:
        """Drop log and valid.csv rows written after the checkpoint we resume from (the killed run's tail)."""
        if not self.ctx.is_main:
            return
        path = self.out / LOG_FILE
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
            buf = io.StringIO()
            # a column of an objective no longer registered (empty: this run cannot have used it) is dropped
            w = csv.DictWriter(buf, fieldnames=log_columns(), extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
            write_atomic(path, buf.getvalue(), durable=True)
        trim_curve(self.out / CURVE_FILE, step, self.valid_columns or None)

    # ---- progress.json --------------------------------------------------------------------------
    def save_progress(self, step: int) -> None:
        """Record the counters at checkpoint ``step`` (main process; before the checkpoint is written)."""
        path = self.out / PROGRESS_FILE
        try:
            saved = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            saved = {}
        saved = {k: v for k, v in saved.items() if k.isdigit() and int(k) < step}
        saved[str(step)] = {"tokens": int(self.tokens_seen), "wall_s": round(self.wall_s, 1)}
        write_atomic(path, json.dumps(saved, indent=1) + "\n", durable=True)

    def load_progress(self, step: int) -> None:
        """Tokens and wall seconds at the checkpoint we resume from; counted from log.csv if progress.json
        lacks it (a run checkpointed before the file existed)."""
        path = self.out / PROGRESS_FILE
        try:
            entry = json.loads(path.read_text()).get(str(step)) if path.exists() else None
        except ValueError:
            entry = None
        if entry is not None:
            self.tokens_seen, self.wall_before = float(entry["tokens"]), float(entry["wall_s"])
            return
        rows = []
        if (self.out / LOG_FILE).exists():
            with open(self.out / LOG_FILE, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        self.tokens_seen = float(sum(int(r["tokens"]) for r in rows))
        self.wall_before = sum(float(r["sec_per_step"]) for r in rows)
        if self.cfg.validate_every:
            log.warning(
                "%s has no entry for step %d: tokens and wall seconds counted from log.csv (%d rows)",
                path,
                step,
                len(rows),
            )
