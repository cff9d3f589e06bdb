"""Which parameters train: LoRA through peft, full fine-tuning, and the light encoder's mode.

LoRA targets are found from the architecture, never from model names: every ``nn.Linear`` that
lives inside a repeated block (an ``nn.ModuleList`` such as the decoder layers) is a target. That
covers attention and MLP projections of Llama, Mistral, Qwen2, Gemma3 and BERT alike, and leaves
out embeddings, the LM head and poolers, which sit outside the repeated blocks.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError


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
