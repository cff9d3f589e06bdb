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
    """sha256 (hex) of ``extra`` and every parameter and buffer of ``module``: see the module docstring."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for name, t in sorted(module.state_dict().items()):
        t = t.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)  # on its own device: a GPU casts before the copy, which then moves fewer bytes
        t = t.cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))  # (bytes,): 0-d tensors too
    return h.hexdigest()
