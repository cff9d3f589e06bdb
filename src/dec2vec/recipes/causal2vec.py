"""Causal2Vec (arXiv 2507.23386), the flagship: a Contextual token from a light bidirectional encoder.

The encoder summarises the whole text in one vector; an MLP projects it into the LLM's input
embedding space and it is prepended to the input. Attention stays causal, so every later token sees
that summary. The embedding concatenates h_ctx (a global summary the LLM refined) with h_eos, which
offsets last-token pooling's recency bias; ``pooling`` keeps the eos-only and ctx-only variants for
the ablation.
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError
from ..pooling import gather_positions, seeded_init_
from .base import Recipe, RecipeOptions
from .registry import register

POOLINGS = ("concat", "eos", "ctx", "eos+encoder")


@dataclass
class Causal2VecOptions(RecipeOptions):
    pooling: str = field(
        default="concat",
        metadata={
            "help": "concat (h_ctx ; h_eos), eos, ctx, or eos+encoder: h_eos beside the light encoder's own "
            "vector, each unit length, so the cosine mixes the two models' cosines by encoder_weight"
        },
    )
    encoder_weight: float = field(
        default=0.5,
        metadata={"help": "eos+encoder: the light encoder's share of the cosine (0 < w < 1; h_eos has 1 - w)"},
    )
    projector_hidden: int = field(default=0, metadata={"help": "hidden width of the projector MLP; 0 = LLM width"})
    bos_first: bool = field(
        default=True,
        metadata={
            "help": "put the tokenizer's BOS before the Contextual token even if the tokenizer adds none: "
            "the first position of a causal LM is an attention sink whose state hardly depends on its input"
        },
    )
    normalize_parts: bool = field(
        default=False,
        metadata={
            "help": "concat: L2-normalise h_ctx and h_eos before concatenating, so each half weighs the same "
            "in a cosine and a constant h_ctx costs the loss (a collapse remedy, docs/RESULTS.md)"
        },
    )
    legacy = {1: {"bos_first": False}}  # format-1 folders were trained with the Contextual token first

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in POOLINGS:
            raise ConfigError(f"causal2vec pooling must be one of {POOLINGS}, got '{self.pooling}'")
        if not 0.0 < self.encoder_weight < 1.0:
            raise ConfigError(f"causal2vec encoder_weight must be between 0 and 1, got {self.encoder_weight}")


class Projector(nn.Module):
    """Light-encoder vector (B, e) -> Contextual token (B, d): Linear, GELU, Linear."""

    def __init__(self, encoder_dim: int, hidden_size: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(encoder_dim, width), nn.GELU(), nn.Linear(width, hidden_size))

    def reset_parameters(self, generator: torch.Generator) -> None:
        seeded_init_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register
class Causal2Vec(Recipe):
    name = "causal2vec"
    summary = "light encoder -> Contextual token prepended, causal attention, concat(h_ctx, h_eos)"
    contextual_token = True
    pooling = "ctx+eos"
    Options = Causal2VecOptions

    @property
    def bos_first(self) -> bool:
        return self.options.bos_first

    def embedding_dim(self, hidden_size: int, encoder_dim: int | None = None) -> int:
        if self.options.pooling == "eos+encoder":
            if encoder_dim is None:
                raise ConfigError("causal2vec pooling eos+encoder needs the light encoder's width")
            return hidden_size + encoder_dim
        return 2 * hidden_size if self.options.pooling == "concat" else hidden_size

    def embedding_parts(self, hidden_size: int, encoder_dim: int | None = None) -> dict[str, slice]:
        if self.options.pooling == "eos+encoder":
            return {
                "eos": slice(0, hidden_size),
                "encoder": slice(hidden_size, self.embedding_dim(hidden_size, encoder_dim)),
            }
        if self.options.pooling != "concat":
            return {}
        return {"ctx": slice(0, hidden_size), "eos": slice(hidden_size, 2 * hidden_size)}

    def build_heads(self, hidden_size: int, encoder_dim: int | None, generator: torch.Generator) -> nn.ModuleDict:
        if encoder_dim is None:
            raise ConfigError("causal2vec needs a light encoder")
        proj = Projector(encoder_dim, hidden_size, self.options.projector_hidden or hidden_size)
        proj.reset_parameters(generator)
        return nn.ModuleDict({"projector": proj})

    def pool(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor], heads: nn.ModuleDict) -> torch.Tensor:
        h_ctx = gather_positions(hidden, batch["ctx_index"])  # (B, d)
        h_eos = gather_positions(hidden, batch["eos_index"])  # (B, d)
        if self.options.pooling == "eos":
            return h_eos
        if self.options.pooling == "eos+encoder":
            # the light encoder already read the whole text for the Contextual token: its vector is free,
            # and beside h_eos it adds what a bidirectional reader keeps of long texts (docs/RESULTS.md)
            w = self.options.encoder_weight
            v = batch["encoder_vector"].to(h_eos.dtype)  # (B, e)
            unit = nn.functional.normalize
            return torch.cat([unit(h_eos, dim=-1) * (1 - w) ** 0.5, unit(v, dim=-1) * w**0.5], dim=-1)  # (B, d+e)
        if self.options.pooling == "ctx":
            return h_ctx
        if self.options.normalize_parts:
            h_ctx, h_eos = nn.functional.normalize(h_ctx, dim=-1), nn.functional.normalize(h_eos, dim=-1)  # (B, d)
        return torch.cat([h_ctx, h_eos], dim=-1)  # (B, 2d)


def mean_token_embeddings(emb: nn.Module, texts: list[str]) -> torch.Tensor:
    """(N, d): each text's mean input embedding over its own tokens (no BOS, template or EOS)."""
    table = emb.backbone.get_input_embeddings()
    ids = emb.tokenizer(texts, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        rows = [torch.tensor(row or [emb.text_tokenizer.eos_id], device=emb.device) for row in ids]
        return torch.stack([table(row).float().mean(0) for row in rows])  # (N, d)


@torch.no_grad()
def fit_projector(emb: nn.Module, texts: list[str], ridge: float = 1e-3, batch_size: int = 64) -> float:
    """Warm start: fit the projector's output layer by least squares; returns the fit's R^2.

    Target: the mean input embedding of the text's tokens, a point in the LLM's input space that
    already means roughly "this text", so from step 0 the Contextual token carries the encoder's
    summary in a form the LLM reads instead of a random vector. The first layer keeps its seeded
    random weights; on its GELU features the output layer is a ridge regression (``ridge`` times the
    mean feature variance), solved in float64.
    """
    if emb.encoder is None or "projector" not in emb.heads:
        raise ConfigError("fit_projector needs a Causal2Vec model (light encoder and projector)")
    proj: Projector = emb.heads["projector"]
    first, act, last = proj.net[0], proj.net[1], proj.net[2]
    was_training = emb.encoder.training
    emb.encoder.eval()
    feats, targets = [], []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        enc = emb.encoder.tokenize(chunk)
        v = emb.encoder.encode_features(enc)  # (b, e)
        feats.append(act(first(v.to(first.weight.dtype))).double())  # (b, w)
        targets.append(mean_token_embeddings(emb, chunk).double())  # (b, d)
    emb.encoder.train(was_training)
    H = torch.cat(feats)  # (N, w)
    Y = torch.cat(targets)  # (N, d)
    H1 = torch.cat([H, torch.ones_like(H[:, :1])], dim=1)  # (N, w+1): the bias column
    gram = H1.T @ H1  # (w+1, w+1)
    lam = ridge * float(gram.diagonal()[:-1].mean())
    reg = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device) * lam
    reg[-1, -1] = 0.0  # the bias is not shrunk
    W = torch.linalg.solve(gram + reg, H1.T @ Y)  # (w+1, d)
    last.weight.copy_(W[:-1].T.to(last.weight.dtype))
    last.bias.copy_(W[-1].to(last.bias.dtype))
    resid = Y - H1 @ W
    return float(1.0 - resid.pow(2).sum() / (Y - Y.mean(0)).pow(2).sum())
