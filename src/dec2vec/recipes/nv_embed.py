"""NV-Embed: bidirectional attention and latent-attention pooling."""

from dataclasses import dataclass, field

import torch
from torch import nn

from ..pooling import LatentAttentionPooling
from .base import Recipe, RecipeOptions
from .registry import register


@dataclass
class NVEmbedOptions(RecipeOptions):
    num_latents: int = field(default=512, metadata={"help": "rows of the trainable latent array"})
    num_heads: int = field(default=8, metadata={"help": "attention heads; must divide the hidden size"})


@register
class NVEmbed(Recipe):
    name = "nv-embed"
    summary = "bidirectional attention, latent-attention pooling (latents -> MLP -> mean)"
    bidirectional = True
    pooling = "latent"
    Options = NVEmbedOptions

    def build_heads(self, hidden_size: int, encoder_dim: int | None, generator: torch.Generator) -> nn.ModuleDict:
        o = self.options
        latent = LatentAttentionPooling(hidden_size, o.num_latents, o.num_heads)
        latent.reset_parameters(generator)
        return nn.ModuleDict({"latent": latent})

    def pool(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor], heads: nn.ModuleDict) -> torch.Tensor:
        return heads["latent"](hidden, batch["pool_mask"])  # (B, d)
