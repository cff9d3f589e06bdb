"""Baseline: the causal model's state at the appended EOS token."""

from .base import Recipe
from .registry import register


@register
class LastToken(Recipe):
    name = "last-token"
    summary = "h_eos of the causal model; baseline"
    pooling = "last"
