"""LLM2Vec (arXiv 2404.05961): bidirectional attention and mean pooling.

Untrained, this is the bidirectional base model; MNTP, SimCSE and the supervised stage are its
training objectives.
"""

from .base import Recipe
from .registry import register


@register
class LLM2Vec(Recipe):
    name = "llm2vec"
    summary = "bidirectional attention, mean pooling; trained by MNTP -> SimCSE -> supervised"
    bidirectional = True
    pooling = "mean"
    losses = ("mntp", "simcse", "contrastive", "distill")
