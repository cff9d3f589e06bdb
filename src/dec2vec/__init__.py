"""dec2vec: text embeddings from decoder-only LLMs, with the model still able to generate."""

from .config import EmbedderConfig
from .embedder import Embedder, TruncationWarning
from .errors import ConfigError, Dec2VecError, InputError, ModelNotFoundError, TruncationError, UnknownRecipeError
from .recipes import get_recipe, recipe_names

__version__ = "0.1.0"

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
