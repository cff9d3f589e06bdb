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


def block_linear_names(model: nn.Module, skip_blocks: list[int] | None = None) -> list[str]:
    """Full module names of the Linear layers inside repeated blocks (ModuleLists).

    ``skip_blocks`` leaves out the blocks at those indices (0-based, negative from the end) of every
    repeated list: a way to keep LoRA off the layers that build the attention sink (docs/RESULTS.md).
    """
    names: list[str] = []
    outer: list[str] = []  # a ModuleList inside another (MoE experts) is walked with its outer block
    for list_name, mod in model.named_modules():
        if not isinstance(mod, nn.ModuleList) or any(list_name.startswith(f"{o}.") for o in outer):
            continue
        outer.append(list_name)
        skipped = _block_indices(skip_blocks or [], len(mod), type(model).__name__)
        for sub_name, sub in mod.named_modules():
            if isinstance(sub, nn.Linear) and sub_name and int(sub_name.split(".")[0]) not in skipped:
                names.append(f"{list_name}.{sub_name}" if list_name else sub_name)
    if not names:
        raise ConfigError(f"no Linear layers inside repeated blocks of {type(model).__name__}: cannot place LoRA")
    return sorted(set(names))


def _block_indices(indices: list[int], n: int, owner: str) -> set[int]:
    """Resolve block indices (negative from the end) against a list of ``n`` blocks, refusing strays."""
    bad = [i for i in indices if not -n <= i < n]
    if bad:
        raise ConfigError(f"lora.skip_layers: {bad} out of range for the {n} blocks of {owner}")
    return {i % n for i in indices}


def add_lora(
    model: nn.Module,
    r: int,
    alpha: int,
    dropout: float,
    targets: list[str] | None = None,
    skip_blocks: list[int] | None = None,
) -> Any:
    """Wrap ``model`` with LoRA adapters (peft); the base weights are frozen, never modified.

    Returns the ``PeftModel``. The adapters are injected into ``model``'s own modules, so code
    that holds ``model`` runs through them; the returned wrapper is kept for merging and saving.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise ConfigError("LoRA needs peft: pip install 'dec2vec[train]'") from e
    names = block_linear_names(model, skip_blocks) if targets is None else targets
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
        backbone_peft = add_lora(emb.backbone, lo.r, lo.alpha, lo.dropout, lo.target_modules, lo.skip_layers)
    else:
        unfreeze(emb.backbone)
    unfreeze(emb.heads)
    if emb.encoder is not None:
        if cfg.encoder_mode == "full":
            unfreeze(emb.encoder)
        elif cfg.encoder_mode == "lora":
            encoder_peft = add_lora(emb.encoder.model, lo.r, lo.alpha, lo.dropout)
    return backbone_peft, encoder_peft
