"""UniMAE (ACL 2025): causal attention kept, the EOS state taught to hold the whole text.

Inference is last-token pooling; the difference lies in training (masked autoregression plus
reconstruction from h_eos by a tiny decoder that is dropped at save), which keeps generation intact.
"""

from .base import Recipe
from .registry import register


@register
class UniMAE(Recipe):
    name = "unimae"
    summary = "causal attention, h_eos; trained by masked autoregression + reconstruction (MAR + MRC)"
    pooling = "last"
    losses = ("unimae", "contrastive", "simcse", "distill")  # unimae = MAR + MRC
