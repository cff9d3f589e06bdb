"""Search and RAG: a persistent LanceDB index of chunked text, search and ask with the same model (``dec2vec[index]``).

The names below load on first use, so that importing the package (the CLI does, to register its
commands) pulls in neither torch nor LanceDB.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Index": "indexer",
    "Hit": "hits",
    "BuildReport": "build",
    "LanguageModel": "language_model",
    "ChunkSpec": "chunking",
    "ask": "rag",
    "Answer": "rag",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
