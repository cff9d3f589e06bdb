"""UniMAE's tiny reconstruction decoder (used only in training, dropped at save).

It must rebuild the clean text X from the single vector h_eos of the corrupted input, so h_eos is
pushed to hold the whole sentence. Following docs/METHODS.md (RetroMAE's enhanced decoding):
  queries      H1 = [h_eos + p_0, ..., h_eos + p_N]
  keys/values  H2 = [h_eos, e_x1 + p_1, ..., e_xN + p_N]
  mask         row i sees key j only if i != j and B_ij = 1 (B ~ Bernoulli), and always sees h_eos,
so no row can copy its own token and each sees a different random subset of the others.
"""

from __future__ import annotations

import torch
from torch import nn

from ..pooling import seeded_init_


class ReconstructionDecoder(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, max_positions: int) -> None:
        super().__init__()
        self.positions = nn.Embedding(max_positions + 1, hidden_size)  # p_0 .. p_N, trainable
        self.norm_q = nn.LayerNorm(hidden_size)
        self.norm_kv = nn.LayerNorm(hidden_size)
        self.attn = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.norm_ffn = nn.LayerNorm(hidden_size)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_size, 4 * hidden_size), nn.GELU(), nn.Linear(4 * hidden_size, hidden_size)
        )
        self.norm_out = nn.LayerNorm(hidden_size)
        self.num_heads = num_heads

    def reset_parameters(self, generator: torch.Generator) -> None:
        seeded_init_(self, generator)

    def visibility(self, valid: torch.Tensor, visible_prob: float, generator: torch.Generator | None) -> torch.Tensor:
        """(B, N) 0/1 text mask -> (B, N+1, N+1) bool, True where query row i may read key j."""
        B, N = valid.shape
        coins = torch.rand((B, N + 1, N + 1), generator=generator).to(valid.device) < visible_prob
        eye = torch.eye(N + 1, dtype=torch.bool, device=valid.device)
        allowed = coins & ~eye  # never its own token; a random subset of the rest
        key_ok = torch.cat([valid.new_ones(B, 1), valid], dim=1).bool()  # (B, N+1): h_eos + real tokens
        allowed = allowed & key_ok[:, None, :]
        allowed[:, :, 0] = True  # h_eos always visible: no empty row
        return allowed

    def forward(
        self,
        h_eos: torch.Tensor,  # (B, d)
        token_embeds: torch.Tensor,  # (B, N, d) clean text token embeddings
        valid: torch.Tensor,  # (B, N) 1 = real token
        visible_prob: float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """-> (B, N, d): the state of row i (1..N), from which token x_i is predicted."""
        B, N, d = token_embeds.shape
        p = self.positions.weight[: N + 1].to(token_embeds.dtype)  # (N+1, d)
        h = h_eos.to(token_embeds.dtype)[:, None, :]  # (B, 1, d)
        q = h + p[None]  # (B, N+1, d)
        kv = torch.cat([h, token_embeds + p[None, 1:]], dim=1)  # (B, N+1, d)
        allowed = self.visibility(valid, visible_prob, generator)  # (B, N+1, N+1)
        mask = ~allowed.repeat_interleave(self.num_heads, dim=0)  # (B*heads, N+1, N+1), True = hidden
        kvn = self.norm_kv(kv)
        out, _ = self.attn(self.norm_q(q), kvn, kvn, attn_mask=mask, need_weights=False)  # (B, N+1, d)
        x = q + out
        x = x + self.ffn(self.norm_ffn(x))
        return self.norm_out(x)[:, 1:]  # (B, N, d): rows 1..N
