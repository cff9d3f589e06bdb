"""The one check of a training run, before any model loads, so a typo in the last stage fails in a
second, not after the backbone has loaded or 2,000 steps later. ``dec2vec train`` and the trainer
both call :func:`preflight`: first what the config says (:func:`check_settings`: the recipe, every
stage's objective: known, its settings, trained by the recipe, shardable under FSDP; batch sizes
against the processes), then what the run reads and writes (:func:`check_files`: the ``model.init``
folder, every data file, what each objective needs beyond its settings, the validation split, the
output folder).

What the objectives check lives on each objective (``Objective.check_config``, ``check_run``); the
config itself (``config.py``) checks only its own fields and imports no objective, so the objectives
may annotate with its types. :func:`valid_columns` is the one step left for after the model is
built: ``valid.csv``'s columns name the parts of the built model's embedding.
"""

from __future__ import annotations

from ..embedder import Embedder
from ..errors import ConfigError
from .config import TrainConfig
from .config_files import expand_home
from .data import resolve_data_path
from .objectives import get_objective
from .validate import curve_columns, read_pairs, valid_sources


def preflight(cfg: TrainConfig, world_size: int) -> None:
    """Raise ``ConfigError`` (or another one-line error) on the first thing that would stop the run,
    before any model loads. ``world_size``: the processes that will train (1 without a launcher)."""
    check_settings(cfg, world_size)
    check_files(cfg)


def check_settings(cfg: TrainConfig, world_size: int) -> None:
    """What the config says, against the recipe and objective registries and the processes; no file is
    read, so every shipped config is checked this way in the tests."""
    from ..recipes import get_recipe

    recipe = get_recipe(cfg.model.recipe)
    if cfg.projector_init != "random" and not recipe.contextual_token:  # the projector makes the Contextual token
        raise ConfigError(f"projector_init: {cfg.projector_init} needs a recipe with a projector (causal2vec)")
    for i, stage in enumerate(cfg.stages):
        where = f"stages.{i} ('{stage.name}')"
        try:
            objective = get_objective(stage.objective)  # an unknown name is refused with the known ones
            objective.check_config(stage)  # what only this objective needs of its settings
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        if cfg.distributed == "fsdp" and not objective.runs_forward_only:
            raise ConfigError(
                f"{where}: objective '{stage.objective}' uses the backbone outside the model's forward, "
                "which distributed: fsdp does not support; use distributed: ddp"
            )
        if stage.objective not in recipe.losses:
            raise ConfigError(
                f"{where}: recipe '{recipe.name}' does not train with '{stage.objective}'; "
                f"its objectives: {', '.join(recipe.losses)}"
            )
        if stage.batch_size % world_size:
            # equal shards keep the mean of per-process losses equal to the loss of the global batch
            raise ConfigError(
                f"{where}: batch_size {stage.batch_size} must be a multiple of the {world_size} processes"
            )


def check_files(cfg: TrainConfig) -> None:
    """What the run reads and writes: the ``model.init`` folder, every data file (as the trainer resolves
    it), what each objective needs beyond its settings (``Objective.check_run``: a teacher...), the
    validation split and the output folder."""
    from ..io import check_writable

    if cfg.model.init and "$" in cfg.model.init and not expand_home(cfg.model.init).is_dir():
        init = expand_home(cfg.model.init)
        raise ConfigError(f"model.init: no model folder at {init} (train the run it names first)")
    for i, stage in enumerate(cfg.stages):
        where = f"stages.{i} ('{stage.name}')"
        for spec in stage.data:
            path = resolve_data_path(spec.path)
            if not path.is_file():
                raise ConfigError(f"{where}: training data not found: {path}")
        get_objective(stage.objective).check_run(stage, cfg, where)
    if cfg.validate_every:
        for src in valid_sources(cfg):  # a missing or short valid split fails now, not at the first validation
            read_pairs(src.path, cfg.validate_pairs)
    check_writable(expand_home(cfg.output_dir), "output_dir", folder=True)


def valid_columns(cfg: TrainConfig, emb: Embedder) -> list[str]:
    """``valid.csv``'s columns for the built model (none without ``validate_every``): its embedding's
    parts (Causal2Vec's ``ctx`` and ``eos``) come from the recipe's options, which a ``model.init``
    folder sets, so they are known only once the model is built."""
    if not cfg.validate_every:
        return []
    return curve_columns(valid_sources(cfg), list(emb.embedding_parts))
