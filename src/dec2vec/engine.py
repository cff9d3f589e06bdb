"""Batch planning and device choice for encoding.

Batches are cut by a token budget over length-sorted texts rather than by a fixed count: short
texts travel in large batches, long ones in small ones, and padding stays minimal. The longest
batch comes first, so an out-of-memory error shows up at once, not at the end of a long job.
"""

from __future__ import annotations

import torch


def plan_batches(lengths: list[int], max_tokens: int, max_batch_size: int = 512) -> list[list[int]]:
    """Indices grouped so that (batch size x longest length) <= max_tokens; longest texts first."""
    if max_tokens < 1 or max_batch_size < 1:
        raise ValueError("max_tokens and max_batch_size must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = lengths[i]
        new_longest = max(longest, n)
        if current and (new_longest * (len(current) + 1) > max_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current, new_longest = [], n
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def default_max_tokens(device: torch.device) -> int:
    """Padded tokens per batch when the caller gives none.

    On CPU, large batches are slower, not faster: on 2 cores SmolLM2 ran at 455-506 tokens/s with
    512-1024-token batches against 184 tokens/s with 16,384 (docs/BENCHMARKS.md), as activations
    outgrow the caches. Accelerators want large batches.
    """
    return 16384 if device.type in ("cuda", "mps") else 1024


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, then Apple MPS, else CPU; an explicit choice wins."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
