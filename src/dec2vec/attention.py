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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
    right_padded: bool = False,
    decoder: nn.Module | None = None,
) -> torch.Tensor:
    """Last-layer hidden states (B, T, d) of ``model`` (a causal LM or its decoder).

    ``right_padded``: the caller guarantees that padding only follows each row's tokens. Causal
    attention then needs no padding mask (a real token never sees a later position), so none is
    passed and SDPA can take its fused causal kernel; states at padding positions are garbage and
    must not be read. ``decoder`` replaces the model's own decoder, e.g. a ``torch.compile`` of it.
    """
    decoder = decoder if decoder is not None else decoder_of(model)
    if bidirectional:
        mask: torch.Tensor | None = bidirectional_mask(attention_mask, inputs_embeds.dtype)
    else:
        mask = None if right_padded else attention_mask
    # right padding: positions 0..T-1 are already right for every real token; passing none lets the
    # model build them (explicit ones with repeats at the padding would look like packed texts)
    positions = None if mask is None else position_ids_from_mask(attention_mask)
    out = decoder(
        inputs_embeds=inputs_embeds,
        attention_mask=mask,
        position_ids=positions,
        use_cache=False,
        return_dict=True,
    )
    return out.last_hidden_state  # (B, T, d), after the final norm


def run_decoder_traced(
    model: nn.Module,
    inputs_embeds: torch.Tensor,  # (B, T, d)
    attention_mask: torch.Tensor,  # (B, T)
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Every layer's hidden states and causal attention weights, for diagnostics (eager kernel).

    Returns ``(hidden, attn)``: ``hidden[l]`` (B, T, d) is the input of layer ``l`` (``hidden[0]``
    the embeddings, the last one after the final norm) and ``attn[l]`` (B, H, T, T) layer ``l``'s
    attention probabilities. SDPA returns no weights, so the eager kernel runs for the call.
    """
    decoder = decoder_of(model)
    with _attn_implementation(decoder, "eager"):
        out = decoder(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=False,
            output_hidden_states=True,
            output_attentions=True,
            return_dict=True,
        )
    return tuple(out.hidden_states), tuple(out.attentions)


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


# ---- the unpadded (varlen) path -----------------------------------------------------------------
#
# Texts are packed into one row without padding; ``cu_seqlens`` marks where each text starts. The
# attention function below is registered with transformers' AttentionInterface under its own name,
# which also tells transformers to build no mask at all (names without a mask function get none),
# so the only per-batch cost is the packed tokens themselves. On CUDA it calls PyTorch's
# FlashAttention varlen kernel; elsewhere a per-text SDPA loop computes the same function (slow,
# for tests and for machines without the kernel).

VARLEN_ATTN = "dec2vec_varlen"


def _varlen_kernel() -> Any | None:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def varlen_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """True where the fused varlen kernel runs: CUDA, half precision."""
    return device.type == "cuda" and dtype in (torch.bfloat16, torch.float16) and _varlen_kernel() is not None


def _varlen_attention(
    module: nn.Module,
    query: torch.Tensor,  # (1, Hq, N, D), all texts of the batch packed
    key: torch.Tensor,  # (1, Hkv, N, D)
    value: torch.Tensor,  # (1, Hkv, N, D)
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    *,
    dec2vec_cu_seqlens: torch.Tensor,  # (n+1,) int32 start of each text, then N
    dec2vec_max_len: int,
    dec2vec_bidirectional: bool,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention over packed texts -> ((1, N, Hq, D), None), the layout transformers' kernels return."""
    q = query[0].transpose(0, 1)  # (N, Hq, D)
    k = key[0].transpose(0, 1)  # (N, Hkv, D)
    v = value[0].transpose(0, 1)  # (N, Hkv, D)
    groups = q.shape[1] // k.shape[1]
    kernel = _KERNEL  # resolved once by _register_varlen, not per layer call
    if kernel is not None and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
        params = _KERNEL_PARAMS
        extra: dict[str, Any] = {}
        if "window_size" in params:  # torch >= 2.11
            extra["window_size"] = (-1, -1) if dec2vec_bidirectional else (-1, 0)
        else:  # torch 2.10
            extra["is_causal"] = not dec2vec_bidirectional
        if "scale" in params:
            extra["scale"] = scaling
        elif scaling is not None and abs(scaling - q.shape[-1] ** -0.5) > 1e-6:
            q = q * (scaling * q.shape[-1] ** 0.5)
        if groups > 1 and "enable_gqa" in params:
            extra["enable_gqa"] = True
        elif groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        cu = dec2vec_cu_seqlens
        out = kernel(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, dec2vec_max_len, dec2vec_max_len, **extra)
        return out.unsqueeze(0), None  # (1, N, Hq, D)
    # reference loop: one SDPA call per text
    out = torch.empty_like(q)  # (N, Hq, D)
    bounds = dec2vec_cu_seqlens.tolist()
    for s, e in zip(bounds[:-1], bounds[1:], strict=True):
        qs = q[s:e].transpose(0, 1)  # (Hq, L, D)
        ks = k[s:e].transpose(0, 1).repeat_interleave(groups, dim=0)  # (Hq, L, D)
        vs = v[s:e].transpose(0, 1).repeat_interleave(groups, dim=0)
        o = nn.functional.scaled_dot_product_attention(qs, ks, vs, is_causal=not dec2vec_bidirectional, scale=scaling)
        out[s:e] = o.transpose(0, 1)
    return out.unsqueeze(0), None


_REGISTERED = False
_KERNEL: Any | None = None
_KERNEL_PARAMS: frozenset[str] = frozenset()  # the kernel's keyword names: its signature changed across torch releases


def _register_varlen() -> None:
    global _REGISTERED, _KERNEL, _KERNEL_PARAMS
    if not _REGISTERED:
        import inspect

        from transformers import AttentionInterface

        _KERNEL = _varlen_kernel()
        if _KERNEL is not None:
            _KERNEL_PARAMS = frozenset(inspect.signature(_KERNEL).parameters)
        AttentionInterface.register(VARLEN_ATTN, _varlen_attention)
        _REGISTERED = True


@contextmanager
def _attn_implementation(model: nn.Module, name: str) -> Iterator[None]:
    """Switch every config of ``model`` to attention ``name`` for the block (configs are shared by layers)."""
    configs = {
        id(m.config): m.config for m in model.modules() if hasattr(getattr(m, "config", None), "_attn_implementation")
    }
    old = {k: c._attn_implementation for k, c in configs.items()}
    try:
        for c in configs.values():
            c._attn_implementation = name
        yield
    finally:
        for k, c in configs.items():
            c._attn_implementation = old[k]


def run_decoder_packed(
    model: nn.Module,
    inputs_embeds: torch.Tensor,  # (N, d): every text of the batch, unpadded, one after the other
    position_ids: torch.Tensor,  # (N,) restarting at 0 for each text
    cu_seqlens: torch.Tensor,  # (n+1,) int32
    max_len: int,
    *,
    bidirectional: bool,
    decoder: nn.Module | None = None,
) -> torch.Tensor:
    """Last-layer states (N, d) of packed texts; each text attends only to itself."""
    _register_varlen()
    base = decoder_of(model)
    with _attn_implementation(base, VARLEN_ATTN):
        out = (decoder if decoder is not None else base)(
            inputs_embeds=inputs_embeds[None],
            attention_mask=None,
            position_ids=position_ids[None],
            use_cache=False,
            return_dict=True,
            dec2vec_cu_seqlens=cu_seqlens,
            dec2vec_max_len=max_len,
            dec2vec_bidirectional=bidirectional,
        )
    return out.last_hidden_state[0]  # (N, d)
