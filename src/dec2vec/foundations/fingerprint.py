"""One fingerprint of a model's weights, for keying what the model computed.

The rule: sha256 of ``extra`` as sorted JSON, then, for every entry of ``module.state_dict()`` in
name order, ``"{name}:{dtype}:{shape}"`` and the tensor's raw bytes (C order, on the CPU).

Why every byte, not a sample: a digest keys cached results (``dec2vec eval``'s result cache) and
index identities (``dec2vec index``); two models that differ in any weight must not share one, and
a sample cannot promise that (a LoRA merged into one layer, a bias nudged by a short fine-tune).
Why names, dtypes and shapes: the same bytes laid out as other tensors are another model.
Why ``extra``: what else decides the output (a config, a length limit) belongs in the same key.

``dtype`` casts floating tensors before hashing, for identities that must not depend on the
precision a model was loaded in: the same weights loaded in float32 and in bfloat16 agree under
``dtype=torch.bfloat16`` (a float32 -> bfloat16 cast rounds as loading in bfloat16 does). Without
it the digest is the evaluation result cache's key, unchanged since that cache was first written,
so cached results stay valid. Cost: one pass over the weights, 0.5-0.8 s for 157M parameters on one
CPU thread.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch


def module_digest(module: torch.nn.Module, extra: Any = None, *, dtype: torch.dtype | None = None) -> str:
    """sha256 (hex) of ``extra`` and every parameter and buffer of ``module``: see the module docstring.

    Entries that are not plain tensors (an int8 layer's packed weights: a tuple with a quantized
    tensor, and its dtype) are hashed by their integer values, scales and zero points, so a
    quantized model has its own digest and never shares a float model's.
    """
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for name, value in sorted(module.state_dict().items()):
        for i, t in enumerate(_tensors(value)):
            if isinstance(t, str):
                h.update(f"{name}#{i}:{t}".encode())
                continue
            t = t.detach()
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)  # on its own device: a GPU casts before the copy, which then moves fewer bytes
            t = t.cpu().contiguous()
            key = name if i == 0 else f"{name}#{i}"
            h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))  # (bytes,): 0-d tensors too
    return h.hexdigest()


def _tensors(value: Any) -> list[Any]:
    """A state entry as plain tensors (and strings for what is not a tensor), in a fixed order."""
    if isinstance(value, torch.Tensor):
        if not value.is_quantized:
            return [value]
        if value.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            scale, zero = value.q_per_channel_scales(), value.q_per_channel_zero_points()
        else:
            scale, zero = torch.tensor([value.q_scale()]), torch.tensor([value.q_zero_point()])
        return [value.int_repr(), scale, zero, str(value.qscheme())]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return [repr(value)]
