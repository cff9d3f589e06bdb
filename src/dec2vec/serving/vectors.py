"""Raw model vectors -> what a request asked for: Matryoshka cut, normalisation, base64."""

from __future__ import annotations

import base64

import numpy as np


def shape_vectors(raw: np.ndarray, dimensions: int | None, normalize: bool) -> np.ndarray:
    """(n, D) raw -> (n, k) float32: keep the first ``dimensions`` columns, then L2-normalise if asked.

    Cutting before normalising is what Matryoshka-style ``dimensions`` means: the kept prefix is
    renormalised, so cosine similarity on the short vectors is still a dot product.
    """
    out = raw[:, :dimensions] if dimensions is not None else raw  # (n, k)
    out = out.astype(np.float32, copy=True)
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)  # (n, 1)
        out /= np.maximum(norms, 1e-12)  # an all-zero row stays zero, as torch's normalize leaves it
    return out


def to_base64(vector: np.ndarray) -> str:
    """Little-endian float32 bytes, base64: what the openai client decodes with ``np.frombuffer(..., 'float32')``."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
