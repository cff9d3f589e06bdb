"""The registered recipes; importing this package registers all of them."""

# Imported in the order `dec2vec recipes` lists them; importing registers.
from . import mean, last_token, echo, icl, llm2vec, unimae, causal2vec, nv_embed  # noqa: F401, I001
from .base import Recipe, RecipeOptions
from .registry import get_recipe, recipe_names, register

__all__ = ["Recipe", "RecipeOptions", "get_recipe", "recipe_names", "register"]
