"""Model FLOPs of a decoder forward pass, and the device's measured matmul rate, for MFU.

Counting real tokens only (padding is waste, not work): per text of L tokens, every linear layer
of the decoder stack costs 2 x params x L, and attention 2 x 2 x L^2 x (heads x head_dim) per
layer (QK^T and AV), halved under a causal mask. Embedding lookups, norms and the LM head (not run
when embedding) are left out, as is usual for MFU.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn


def linear_params(decoder: nn.Module) -> int:
    """Weights of every nn.Linear in the decoder stack (the LM head is not part of it)."""
    return sum(m.weight.numel() for m in decoder.modules() if isinstance(m, nn.Linear))


def attention_width(config: Any) -> tuple[int, int]:
    """(layers, heads x head_dim) of a transformers decoder config."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = int(cfg.num_attention_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    return int(cfg.num_hidden_layers), heads * head_dim


def forward_flops(decoder: nn.Module, config: Any, lengths: list[int], causal: bool) -> float:
    """FLOPs of one forward pass over texts of these real lengths."""
    params = linear_params(decoder)
    layers, width = attention_width(config)
    tokens = sum(lengths)
    squares = sum(n * n for n in lengths)
    attn = 4.0 * layers * width * squares * (0.5 if causal else 1.0)
    return 2.0 * params * tokens + attn


def matmul_rate(device: torch.device, dtype: torch.dtype, size: int | None = None, repeats: int | None = None) -> float:
    """Measured FLOP/s of a size^3 matrix product on random data (the MFU denominator).

    8192^3 on GPUs (large enough to reach the peak); 1024^3 on CPUs, where that already saturates
    the cores and 8192^3 would take seconds per product.
    """
    size = size or (8192 if device.type == "cuda" else 1024)
    repeats = repeats or (10 if device.type == "cuda" else 3)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, dtype=dtype, generator=gen)
    b = torch.randn(size, size, device=device, dtype=dtype, generator=gen)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            a @ b
        end.record()
        torch.cuda.synchronize(device)
        seconds = start.elapsed_time(end) / 1000
    else:
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        seconds = time.perf_counter() - t
    return 2.0 * size**3 * repeats / seconds
