"""dec2vec: text embeddings from decoder-only LLMs, with the model still able to generate.

``Embedder`` and the recipe functions load on first use, so that importing the package (the CLI
does, for ``dec2vec --help``) does not pull in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigError, Dec2VecError, InputError, ModelNotFoundError, TruncationError, UnknownRecipeError

if TYPE_CHECKING:
    from .config import EmbedderConfig
    from .embedder import Embedder
    from .pipeline import TruncationWarning
    from .recipes import get_recipe, recipe_names

__version__ = "0.1.0"

_LAZY = {
    "EmbedderConfig": "config",
    "Embedder": "embedder",
    "TruncationWarning": "pipeline",
    "get_recipe": "recipes",
    "recipe_names": "recipes",
}

__all__ = [
    "ConfigError",
    "Dec2VecError",
    "Embedder",
    "EmbedderConfig",
    "InputError",
    "ModelNotFoundError",
    "TruncationError",
    "TruncationWarning",
    "UnknownRecipeError",
    "get_recipe",
    "recipe_names",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
