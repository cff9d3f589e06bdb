"""Exported forms of a dec2vec model, for runtimes without PyTorch models (``dec2vec export``).

- :mod:`.onnx`: :func:`export_onnx` writes one ONNX graph (light encoder, backbone, pooling, L2
  normalisation) with the tokenizer(s) and a JSON description of its inputs.
- :mod:`.runtime`: :class:`OnnxEmbedder` loads such a folder and encodes texts with onnxruntime,
  building the inputs with dec2vec's own text pipeline. Details: docs/EXPORT.md.

Both import onnx/onnxruntime (the ``onnx`` extra) only when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .onnx import export_onnx
    from .runtime import OnnxEmbedder

__all__ = ["OnnxEmbedder", "export_onnx"]
_LAZY = {"export_onnx": "onnx", "OnnxEmbedder": "runtime"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
