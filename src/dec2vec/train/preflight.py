"""Checks of a whole run before its first step, so a typo in the last stage fails at once, not 2,000
steps later: every stage's objective against the recipe, batch sizes against the processes, data files,
what each objective needs (``Objective.check_run``), and the validation split."""

from __future__ import annotations

from ..embedder import Embedder
from ..errors import ConfigError
from .config import TrainConfig
from .data import resolve_data_path
from .objectives import get_objective
from .validate import curve_columns, read_pairs, valid_sources


def check_run(cfg: TrainConfig, emb: Embedder, world_size: int) -> list[str]:
    """Raise ``ConfigError`` on the first stage that cannot train; returns ``valid.csv``'s columns
    (none without ``validate_every``)."""
    if cfg.projector_init != "random" and "projector" not in emb.heads:
        raise ConfigError(f"projector_init: {cfg.projector_init} needs a recipe with a projector (causal2vec)")
    for i, stage in enumerate(cfg.stages):
        where = f"stages.{i} ('{stage.name}')"
        if stage.objective not in emb.recipe.losses:
            raise ConfigError(
                f"{where}: recipe '{emb.recipe.name}' does not train with '{stage.objective}'; "
                f"its objectives: {', '.join(emb.recipe.losses)}"
            )
        if stage.batch_size % world_size:
            # equal shards keep the mean of per-process losses equal to the loss of the global batch
            raise ConfigError(
                f"{where}: batch_size {stage.batch_size} must be a multiple of the {world_size} processes"
            )
        for spec in stage.data:
            path = resolve_data_path(spec.path)
            if not path.is_file():
                raise ConfigError(f"{where}: training data not found: {path}")
        get_objective(stage.objective).check_run(stage, cfg, where)
    if not cfg.validate_every:
        return []
    sources = valid_sources(cfg)  # a missing valid split fails now, not at the first validation
    for src in sources:
        read_pairs(src.path, cfg.validate_pairs)
    return curve_columns(sources, list(emb.recipe.embedding_parts(emb.hidden_size)))
