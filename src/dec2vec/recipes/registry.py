"""Name -> recipe class. Adding a method is one file with ``@register`` on its class."""

from __future__ import annotations

from typing import TypeVar

from ..errors import UnknownRecipeError
from .base import Recipe

_RECIPES: dict[str, type[Recipe]] = {}
R = TypeVar("R", bound=type[Recipe])


def register(cls: R) -> R:
    if cls.name in _RECIPES and _RECIPES[cls.name] is not cls:
        raise ValueError(f"recipe '{cls.name}' is registered twice")
    _RECIPES[cls.name] = cls
    return cls


def get_recipe(name: str) -> type[Recipe]:
    try:
        return _RECIPES[name]
    except KeyError:
        raise UnknownRecipeError(f"unknown recipe '{name}'; known recipes: {', '.join(recipe_names())}") from None


def recipe_names() -> list[str]:
    return list(_RECIPES)
