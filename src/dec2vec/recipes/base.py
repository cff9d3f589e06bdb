"""What a recipe is: how inputs are built, which attention, how states are pooled.

A recipe is a small class registered under a name. Its options are a dataclass saved beside the
weights, so a saved model rebuilds exactly the inputs it was trained with. Heads (a projector, a
latent-attention layer) are owned by the recipe and initialised from a seed, so an untrained model
is deterministic. ``losses`` names the training objectives (``dec2vec.train.objectives``) a
recipe accepts; every recipe can be trained contrastively, supervised or with SimCSE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError
from ..inputs import Segment
from ..pooling import gather_positions, mean_pool


@dataclass
class RecipeOptions:
    """Options every recipe has; subclasses add their own fields."""

    instruction_template: str = field(
        default="Instruct: {instruction}\nQuery: ",
        metadata={"help": "how a task instruction is written before the text; never mean-pooled"},
    )

    #: per older saved format, the values an option it did not know had then (applied at load)
    legacy: ClassVar[dict[int, dict[str, Any]]] = {}

    def __post_init__(self) -> None:
        if "{instruction}" not in self.instruction_template:
            raise ConfigError("instruction_template must contain '{instruction}'")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> RecipeOptions:
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown} for this recipe; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Recipe:
    name: ClassVar[str]
    summary: ClassVar[str]
    bidirectional: ClassVar[bool] = False
    contextual_token: ClassVar[bool] = False  # prepend Causal2Vec's Contextual token
    pooling: ClassVar[str] = "last"  # "mean" | "last" (EOS) | recipe-specific
    text_copies: ClassVar[int] = 1  # how often the text appears in the input (echo: 2)
    losses: ClassVar[tuple[str, ...]] = ("contrastive", "simcse", "distill")  # objectives a stage may use
    Options: ClassVar[type[RecipeOptions]] = RecipeOptions

    def __init__(self, options: RecipeOptions | dict[str, Any] | None = None) -> None:
        if not isinstance(options, RecipeOptions):
            options = self.Options.from_dict(options)
        self.options = options

    @property
    def bos_first(self) -> bool:
        """Put the tokenizer's BOS first even when the tokenizer does not add it (Causal2Vec does)."""
        return False

    def embedding_parts(self, hidden_size: int, encoder_dim: int | None = None) -> dict[str, slice]:
        """Named slices of a composite embedding (Causal2Vec's concat: ``ctx`` and ``eos``); {} when it is one
        state; ``encoder_dim`` is the light encoder's width, for recipes that have one. Validation scores each
        part alone, which is how a collapsed part shows, and a stage's ``part_loss`` trains each part with
        the stage's own loss, so that none can go constant."""
        return {}

    # ---- inputs ------------------------------------------------------------------------------
    def instruction_segment(self, instruction: str | None) -> list[Segment]:
        if not instruction:
            return []
        return [Segment(self.options.instruction_template.format(instruction=instruction))]

    def segments(self, text: str, instruction: str | None) -> list[Segment]:
        """Default input: [instruction] text. BOS, the Contextual slot and EOS are added by the builder."""
        return [*self.instruction_segment(instruction), Segment(text, pooled=True)]

    # ---- heads and pooling ---------------------------------------------------------------------
    def embedding_dim(self, hidden_size: int, encoder_dim: int | None = None) -> int:
        return hidden_size

    def build_heads(self, hidden_size: int, encoder_dim: int | None, generator: torch.Generator) -> nn.ModuleDict:
        """Trainable layers of the recipe, initialised from ``generator`` (none by default)."""
        return nn.ModuleDict()

    def pool(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor], heads: nn.ModuleDict) -> torch.Tensor:
        """(B, T, d) last-layer states -> (B, D) embeddings."""
        if self.pooling == "mean":
            return mean_pool(hidden, batch["pool_mask"])
        if self.pooling == "last":
            return gather_positions(hidden, batch["eos_index"])
        raise NotImplementedError(f"recipe {self.name} must implement pool() for pooling '{self.pooling}'")

    def describe(self) -> str:
        attn = "bidirectional" if self.bidirectional else "causal"
        return f"{self.name:<11} {attn:<13} pool={self.pooling:<7} {self.summary}"
