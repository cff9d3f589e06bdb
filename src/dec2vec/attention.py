"""The one module that touches transformers internals: attention masks, and GGUF quantization state.

How bidirectionality is switched on, for every architecture at once: transformers' mask builders
(``create_causal_mask`` and its sliding-window sibling) return a ready 4D mask unchanged, and the
SDPA and eager kernels then use that mask instead of their causal default. So we pass a 4D additive
float mask that hides only padding keys. No model class is forked or patched, nothing depends on
the model's name, and the causal path passes the ordinary 2D padding mask. Tests check both modes
on tiny Llama, Mistral, Qwen2 and Gemma3 configs and on the real SmolLM2.

Limits of this mechanism, stated so that nobody is surprised:
  * FlashAttention-2 kernels take no 4D mask; models are loaded with ``sdpa`` (or ``eager``).
  * On sliding-window layers (Mistral, Gemma3) the bidirectional mask is full, i.e. the window is
    not applied; it only matters for texts longer than the window (4096 / 512 tokens).
"""

from __future__ import annotations

import torch
from torch import nn

SUPPORTED_ATTN = ("sdpa", "eager")


def decoder_of(model: nn.Module) -> nn.Module:
    """The bare decoder stack (no LM head) of a causal LM, so pooling never pays for vocab logits."""
    get = getattr(model, "get_decoder", None)
    decoder = get() if callable(get) else None
    return decoder if decoder is not None else model


def bidirectional_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) 0/1 padding mask -> (B, 1, T, T) additive mask that hides padding keys only."""
    keep = attention_mask[:, None, None, :].to(torch.bool)  # (B, 1, 1, T)
    T = attention_mask.shape[-1]
    keep = keep.expand(-1, 1, T, T)  # (B, 1, T, T)
    mask = torch.zeros(keep.shape, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill(~keep, torch.finfo(dtype).min)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, T) positions counted over real tokens, so left and right padding agree."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def run_decoder(
    model: nn.Module,
    inputs_embeds: torch.Tensor,  # (B, T, d)
    attention_mask: torch.Tensor,  # (B, T) 1 = token, 0 = padding
    *,
    bidirectional: bool,
) -> torch.Tensor:
    """Last-layer hidden states (B, T, d) of ``model`` (a causal LM or its decoder)."""
    decoder = decoder_of(model)
    mask = bidirectional_mask(attention_mask, inputs_embeds.dtype) if bidirectional else attention_mask
    out = decoder(
        inputs_embeds=inputs_embeds,
        attention_mask=mask,
        position_ids=position_ids_from_mask(attention_mask),
        use_cache=False,
        return_dict=True,
    )
    return out.last_hidden_state  # (B, T, d), after the final norm


def check_attn_implementation(model: nn.Module) -> None:
    """Refuse kernels that would silently ignore our 4D mask."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if impl is not None and impl not in SUPPORTED_ATTN:
        raise ValueError(f"attention implementation '{impl}' cannot take a 4D mask; use one of {SUPPORTED_ATTN}")


def drop_quantization_state(model: nn.Module) -> None:
    """Make a model dequantized from GGUF save as a plain fp32 checkpoint.

    transformers keeps the GGUF quantizer on the model and its settings in the config even after
    dequantizing, and would then refuse or mislabel a plain ``save_pretrained``.
    """
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def set_attention_dropout(model: nn.Module, p: float) -> dict[nn.Module, float]:
    """Set the attention-probability dropout of every attention layer; returns the old values.

    Decoder LLMs usually ship with it at 0, which leaves SimCSE without its only augmentation.
    transformers' attention modules copy ``config.attention_dropout`` into an attribute at build
    time, so the attribute is what must change.
    """
    old: dict[nn.Module, float] = {}
    for mod in model.modules():
        value = getattr(mod, "attention_dropout", None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            old[mod] = value
            mod.attention_dropout = p
    return old


def restore_attention_dropout(old: dict[nn.Module, float]) -> None:
    for mod, value in old.items():
        mod.attention_dropout = value
