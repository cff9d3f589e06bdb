"""Checks of a whole run before its first step, so a typo in the last stage fails at once, not 2,000
steps later. Two steps, both here: :func:`check_config` before any model loads (the recipe, the
``model.init`` folder, every data file, the output folder), called by ``dec2vec train`` and by the
trainer; :func:`check_run` once the model is built (every stage's objective against the recipe,
batch sizes against the processes, what each objective needs (``Objective.check_run``), and the
validation split)."""

from __future__ import annotations

from ..embedder import Embedder
from ..errors import ConfigError
from .config import TrainConfig
from .config_files import expand_home
from .data import resolve_data_path
from .objectives import get_objective
from .validate import curve_columns, read_pairs, valid_sources


def check_config(cfg: TrainConfig) -> None:
    """What the trainer would refuse only once the model is loaded, checked before it loads: the recipe,
    the ``model.init`` folder, every data file (as the trainer resolves it) and the output folder."""
    from ..io import check_writable
    from ..recipes import get_recipe

    get_recipe(cfg.model.recipe)
    if cfg.model.init and "$" in cfg.model.init and not expand_home(cfg.model.init).is_dir():
        init = expand_home(cfg.model.init)
        raise ConfigError(f"model.init: no model folder at {init} (train the run it names first)")
    for i, stage in enumerate(cfg.stages):
        for spec in stage.data:
            path = resolve_data_path(spec.path)
            if not path.is_file():
                raise ConfigError(f"stages.{i} ('{stage.name}'): training data not found: {path}")
    check_writable(expand_home(cfg.output_dir), "output_dir", folder=True)


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
        get_objective(stage.objective).check_run(stage, cfg, where)
    if not cfg.validate_every:
        return []
    sources = valid_sources(cfg)  # a missing valid split fails now, not at the first validation
    for src in sources:
        read_pairs(src.path, cfg.validate_pairs)
    return curve_columns(sources, list(emb.recipe.embedding_parts(emb.hidden_size)))
