"""What every objective is: a registered class that turns a batch of records into a loss and its backward pass.

Each objective embeds or runs the model through the public ``Embedder`` (so training sees exactly
the inputs inference builds), computes a pure loss from ``train/losses.py``, calls backward itself
(gradient caching needs several backward calls), and returns named parts for the log.

What an objective needs is declared on its class, where the run's preflight (``train/preflight.py``)
and validation read it (``registry.py``): the data it reads (``kind``), the settings it checks
(``check_config``), what else it checks before the model loads (``check_run``) and the loss parts it
logs (``parts``). Which recipes train with it is the ``losses``
of each recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ...embedder import Embedder
from ...errors import ConfigError
from ...pipeline import validate_texts
from ..distributed import DistContext
from ..gradcache import cached_backward

if TYPE_CHECKING:  # annotations only (train/config.py imports no objective: preflight reads the registry)
    from ..config import DataSpec, StageConfig, TrainConfig
    from ..data import Record

Features = dict[str, torch.Tensor]

#: what an objective's data must hold: query/positive pairs, plain text, or either (one kind per file)
KINDS = ("pairs", "text", "any")


@dataclass
class StepResult:
    loss: torch.Tensor  # scalar, detached
    parts: dict[str, float] = field(default_factory=dict)
    tokens: int = 0  # real (non-pad) backbone tokens processed by this process


class Objective:
    """Subclass, set ``name`` and ``kind``, implement ``step``, and decorate with ``registry.register``."""

    name: ClassVar[str]  # what a stage's ``objective`` says, and a recipe's ``losses`` lists
    kind: ClassVar[str] = "pairs"  # one of KINDS: the data the loader hands to ``step``
    parts: ClassVar[tuple[str, ...]]  # the named loss parts ``step`` returns: log.csv columns
    prepares_ahead: ClassVar[bool] = False  # whether ``prepare`` sees every text of the stage before step 1
    runs_forward_only: ClassVar[bool] = True  # the model only through ``emb(features)``: FSDP may shard it

    @classmethod
    def check_config(cls, stage: StageConfig) -> None:
        """Refuse a stage's settings this objective cannot train with (``ConfigError``), in the run's
        preflight: the settings only, no files, no model."""

    @classmethod
    def check_run(cls, stage: StageConfig, cfg: TrainConfig, where: str) -> None:
        """In the run's preflight, before any model loads: refuse (``ConfigError``) or warn about what the
        stage needs beyond its settings (a teacher on disk...). ``where`` names the stage in messages."""

    def __init__(self, emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> None:
        self.emb, self.stage, self.ctx, self.seed = emb, stage, ctx, seed
        self.extra = nn.ModuleDict()  # trainable modules used only while training (never saved)
        self.ahead: dict[Any, Features] = {}  # this step's inputs tokenised ahead (``tokenize_ahead``)

    @property
    def device(self) -> torch.device:
        return self.emb.device

    def features(self, texts: list[str], instruction: str | None = None) -> Features:
        """Model inputs on the device: tokenised ahead by the trainer's worker when planned, else now.
        Copies are non-blocking (from pinned memory when the worker pinned them on CUDA)."""
        feats = self.ahead.get((tuple(texts), instruction))
        if feats is None:
            feats = self.emb.tokenize(texts, instruction)
        return {k: v.to(self.device, non_blocking=True) for k, v in feats.items()}

    def plan(self, records: list[Record], spec: DataSpec) -> list[tuple[list[str], str | None]] | None:
        """The (texts, instruction) groups ``step`` will embed for ``records``, in order, so the trainer
        can tokenise them ahead in its worker; None (the default) when the objective does not say."""
        return None

    def tokenize_ahead(self, records: list[Record], spec: DataSpec) -> dict[Any, Features]:
        """CPU features of the chunks ``plan`` names, keyed as ``features`` looks them up. Thread-safe
        against a running step: it reads the tokenizers only, and warns of nothing (training cuts inputs)."""
        groups = self.plan(records, spec)
        if not groups:
            return {}
        pipe, chunk = self.emb.pipeline, self._chunk(groups)
        out: dict[Any, Features] = {}
        for texts, instruction in groups:
            for i in range(0, len(texts), chunk):
                part = texts[i : i + chunk]
                out[(tuple(part), instruction)] = pipe.features(pipe.prepare(validate_texts(part), instruction, True))
        return out

    def _chunk(self, groups: list[tuple[list[str], str | None]]) -> int:
        return self.stage.chunk_size or max(len(texts) for texts, _ in groups)

    def generator(self, step: int) -> torch.Generator:
        """Masks drawn from (seed, step, rank), so a resumed run draws the same ones."""
        return torch.Generator().manual_seed(hash((self.seed, step, self.ctx.rank)) & 0x7FFF_FFFF)

    def step(self, records: list[Record], spec: DataSpec, step: int) -> StepResult:
        raise NotImplementedError

    # ---- optional hooks ---------------------------------------------------------------------------
    def texts_of(self, records: list[Record], hard_negatives: int) -> list[str]:
        """With ``prepares_ahead``: the texts of a batch that ``prepare`` must see."""
        raise NotImplementedError

    def prepare(self, texts: list[str]) -> None:
        """With ``prepares_ahead``, on the main process: work done once for the rest of the stage's texts
        (replayed from a copy of the loader), e.g. a teacher's cache filled."""

    def prepared(self) -> None:
        """With ``prepares_ahead``, on the other processes once the main one has prepared."""

    def close(self) -> None:
        """At the end of the stage, or when it fails: undo what the objective changed on the model."""

    def embed_grouped(self, groups: list[tuple[list[str], str | None]], loss_fn: Any) -> tuple[torch.Tensor, int]:
        """Embed each (texts, instruction) group, call ``loss_fn(*embeddings)`` and back-propagate.

        With ``chunk_size`` set this is gradient caching (one chunk's activations at a time); the
        loss and gradients are the same either way. Returns the detached loss and the real tokens.
        """
        chunk = self._chunk(groups)
        chunks = [
            [self.features(texts[i : i + chunk], instruction) for i in range(0, len(texts), chunk)]
            for texts, instruction in groups
        ]
        tokens = sum(int(f["attention_mask"].sum()) for group in chunks for f in group)
        device_type = self.device.type

        slices = list(self.emb.embedding_parts.values()) if self.stage.part_loss else []

        def fp32_loss(*reps: torch.Tensor) -> torch.Tensor:
            # under ``precision: bf16`` autocast would run the similarity matmuls in bf16 (3 significant
            # digits, visible as steps in the logged loss); the model ran in bf16, the loss does not
            with torch.autocast(device_type, enabled=False):
                reps = tuple(r.float() for r in reps)
                # each part alone first, so the named parts an objective logs are the whole embedding's
                alone = [loss_fn(*(r[:, sl] for r in reps)) for sl in slices]  # each part (n, d) of (n, D)
                total = loss_fn(*reps)
                if alone:
                    total = total + self.stage.part_loss * torch.stack(alone).mean()
                return total

        if self.stage.chunk_size:
            return cached_backward(self.emb, chunks, fp32_loss, self.device), tokens
        reps = [torch.cat([self.emb(f) for f in group]) for group in chunks]  # each (n_group, D)
        loss = fp32_loss(*reps)
        loss.backward()
        return loss.detach(), tokens

    def lm_head(self) -> nn.Module:
        head = self.emb.backbone.get_output_embeddings()
        if head is None:
            raise ConfigError(f"objective '{self.name}' needs the backbone's LM head; this backbone has none")
        return head
