"""Name -> objective class. Adding an objective is one class with ``@register`` (see ``base.Objective``).

The run's preflight (``train/preflight.py``), the trainer, held-out validation and the docs' table
of objectives all read this registry; a recipe names the objectives it trains with in
its ``losses``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ...errors import ConfigError
from .base import KINDS, Objective

if TYPE_CHECKING:
    from ...embedder import Embedder
    from ..config import StageConfig
    from ..distributed import DistContext

_OBJECTIVES: dict[str, type[Objective]] = {}
ObjectiveT = TypeVar("ObjectiveT", bound=type[Objective])


def register(cls: ObjectiveT) -> ObjectiveT:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"objective class {cls.__name__} has no name")
    if cls.kind not in KINDS:
        raise ValueError(f"objective '{name}': kind must be one of {KINDS}, got '{cls.kind}'")
    parts = getattr(cls, "parts", None)
    if not isinstance(parts, tuple) or not parts or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(f"objective '{name}': parts must name the loss parts its step logs, got {parts!r}")
    if name in _OBJECTIVES and _OBJECTIVES[name] is not cls:
        raise ValueError(f"objective '{name}' is registered twice")
    _OBJECTIVES[name] = cls
    return cls


def get_objective(name: str) -> type[Objective]:
    try:
        return _OBJECTIVES[name]
    except KeyError:
        raise ConfigError(f"unknown objective '{name}'; known: {', '.join(objective_names())}") from None


def objective_names() -> list[str]:
    return list(_OBJECTIVES)


def recipes_accepting(name: str) -> list[str]:
    """The registered recipes whose ``losses`` list objective ``name``."""
    from ...recipes import get_recipe, recipe_names

    return [r for r in recipe_names() if name in get_recipe(r).losses]


def build_objective(emb: Embedder, stage: StageConfig, ctx: DistContext, seed: int) -> Objective:
    allowed = emb.recipe.losses
    if stage.objective not in allowed:
        raise ConfigError(
            f"recipe '{emb.recipe.name}' does not train with '{stage.objective}'; its objectives: {', '.join(allowed)}"
        )
    return get_objective(stage.objective)(emb, stage, ctx, seed)
