"""What a run builds before its first step: the embedder from the config, made ready to train (gradient
checkpointing, compiled layers, FSDP sharding), and the learning-rate schedule."""

from __future__ import annotations

from typing import Any

import torch

from ..embedder import Embedder
from ..errors import ConfigError
from .config import TrainConfig
from .config_files import expand_home
from .distributed import DistContext


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
        encoder_long_texts=m.encoder_long_texts,
        **kwargs,
        **m.recipe_options,
    )


def ready_to_train(emb: Embedder, cfg: TrainConfig, ctx: DistContext) -> bool:
    """Gradient checkpointing, compilation and (``distributed: fsdp`` under several processes) sharding,
    after the trainable parameters are chosen; returns whether the model is sharded."""
    from .speed import compile_layers, enable_gradient_checkpointing

    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(emb)
    if cfg.compile:
        compile_layers(emb)
    if cfg.distributed != "fsdp" or not ctx.enabled:
        return False
    from .fsdp import shard_model

    shard_model(emb)
    return True


def lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return f
