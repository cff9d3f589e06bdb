"""Baseline: mean of the causal model's last-layer states over the text tokens (instruction excluded)."""

from .base import Recipe
from .registry import register


@register
class Mean(Recipe):
    name = "mean"
    summary = "mean of h_t over text tokens (causal attention); baseline"
    pooling = "mean"
