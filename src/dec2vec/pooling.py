"""Pooling: pure functions of hidden states and masks, plus NV-Embed's latent-attention layer."""

from __future__ import annotations

import torch
from torch import nn

from .errors import ConfigError


def seeded_init_(module: nn.Module, generator: torch.Generator, std: float = 0.02) -> None:
    """Initialise an untrained head from a seeded generator: the same model on every run and machine.

    Matrices get N(0, std), biases zeros and norm scales ones, as transformers initialises its own layers.
    """
    norms = [m for m in module.modules() if isinstance(m, (nn.LayerNorm, nn.RMSNorm))]
    in_norm = {id(p) for m in norms for p in m.parameters(recurse=False)}
    for p in module.parameters():
        if id(p) in in_norm:
            continue
        if p.dim() > 1:
            nn.init.normal_(p, std=std, generator=generator)
        else:
            nn.init.zeros_(p)
    for m in norms:
        m.reset_parameters()  # scale 1, shift 0


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, d), (B, T) 0/1 -> (B, d): mean over the positions where mask is 1."""
    keep = mask.bool().unsqueeze(-1)  # (B, T, 1)
    total = hidden.float().masked_fill(~keep, 0.0).sum(dim=1)  # (B, d); fp32 sum, pads can't leak NaN
    count = keep.sum(dim=1).clamp(min=1)  # (B, 1)
    return (total / count).to(hidden.dtype)


def gather_positions(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, T, d), (B,) -> (B, d): the state at one position per row (EOS, Contextual token)."""
    idx = index.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])  # (B, 1, d)
    return hidden.gather(1, idx).squeeze(1)


class LatentAttentionPooling(nn.Module):
    """NV-Embed's pooling: token states attend to a trainable latent array, then an MLP, then a mean.

    Both sub-blocks are residual, so an untrained layer stays close to plain mean pooling and
    training starts from a sensible embedding rather than noise.
    """

    def __init__(self, hidden_size: int, num_latents: int = 512, num_heads: int = 8, mlp_ratio: int = 4) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ConfigError(f"hidden size {hidden_size} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.latents = nn.Parameter(torch.empty(num_latents, hidden_size))  # (r, d): keys and values
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.kv_proj = nn.Linear(hidden_size, 2 * hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, mlp_ratio * hidden_size),
            nn.GELU(),
            nn.Linear(mlp_ratio * hidden_size, hidden_size),
        )

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Deterministic init (small outputs keep the residual path dominant)."""
        seeded_init_(self, generator)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, d), (B, T) -> (B, d)."""
        B, T, d = hidden.shape
        H = self.num_heads
        q = self.q_proj(hidden).view(B, T, H, d // H).transpose(1, 2)  # (B, H, T, d/H)
        k, v = self.kv_proj(self.latents.to(hidden.dtype)).chunk(2, dim=-1)  # (r, d) each
        k = k.view(-1, H, d // H).transpose(0, 1).unsqueeze(0)  # (1, H, r, d/H)
        v = v.view(-1, H, d // H).transpose(0, 1).unsqueeze(0)  # (1, H, r, d/H)
        att = nn.functional.scaled_dot_product_attention(q, k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1))
        att = att.transpose(1, 2).reshape(B, T, d)  # (B, T, d)
        x = hidden + self.o_proj(att)
        x = x + self.mlp(x)
        return mean_pool(x, mask)
