"""Which parameters train: LoRA through peft, full fine-tuning, and the light encoder's mode.

LoRA targets are found from the architecture, never from model names: every ``nn.Linear`` that
lives inside a repeated block (an ``nn.ModuleList`` such as the decoder layers) is a target. That
covers attention and MLP projections of Llama, Mistral, Qwen2, Gemma3 and BERT alike, and leaves
out embeddings, the LM head and poolers, which sit outside the repeated blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..embedder import Embedder
    from .config import TrainConfig


def block_linear_names(model: nn.Module) -> list[str]:
    """Full module names of the Linear layers inside repeated blocks (ModuleLists)."""
    names: list[str] = []
    for list_name, mod in model.named_modules():
        if not isinstance(mod, nn.ModuleList):
            continue
        for sub_name, sub in mod.named_modules():
            if isinstance(sub, nn.Linear) and sub_name:
                names.append(f"{list_name}.{sub_name}" if list_name else sub_name)
    if not names:
        raise ConfigError(f"no Linear layers inside repeated blocks of {type(model).__name__}: cannot place LoRA")
    return sorted(set(names))


def add_lora(model: nn.Module, r: int, alpha: int, dropout: float, targets: list[str] | None = None) -> Any:
    """Wrap ``model`` with LoRA adapters (peft); the base weights are frozen, never modified.

    Returns the ``PeftModel``. The adapters are injected into ``model``'s own modules, so code
    that holds ``model`` runs through them; the returned wrapper is kept for merging and saving.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise ConfigError("LoRA needs peft: pip install 'dec2vec[train]'") from e
    if targets is None:
        names = block_linear_names(model)
    else:
        names = targets
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=names, bias="none")
    return get_peft_model(model, config)


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(True)


def set_trainable(emb: Embedder, cfg: TrainConfig) -> tuple[Any, Any]:
    """Freeze ``emb``, then let train what ``cfg`` says: the backbone's LoRA adapters (or the whole
    backbone), the heads always, and the light encoder per ``encoder_mode`` (frozen, full or LoRA).
    Returns the backbone's and the encoder's peft wrappers (None where they have no LoRA), which the
    export merges or saves."""
    backbone_peft = encoder_peft = None
    freeze(emb)
    lo = cfg.lora
    if lo.enabled:
        backbone_peft = add_lora(emb.backbone, lo.r, lo.alpha, lo.dropout, lo.target_modules)
    else:
        unfreeze(emb.backbone)
    unfreeze(emb.heads)
    if emb.encoder is not None:
        if cfg.encoder_mode == "full":
            unfreeze(emb.encoder)
        elif cfg.encoder_mode == "lora":
            encoder_peft = add_lora(emb.encoder.model, lo.r, lo.alpha, lo.dropout)
    return backbone_peft, encoder_peft
