"""Where a Causal2Vec model's Contextual token carries the text, layer by layer (docs/RESULTS.md).

A causal LM turns some positions into attention sinks: states with one or two massive dimensions that
are nearly the same for every input, which later tokens attend to as a no-op. If training turns the
Contextual token's position into one, its final state h_ctx stops depending on the text and the
concatenation's first half is a constant. :func:`trace_contextual_token` measures, for every layer,
how much the state at the Contextual token (and at EOS) depends on the text and how much attention
the text's tokens pay to BOS and to the Contextual token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .attention import run_decoder_traced
from .errors import ConfigError
from .pooling import gather_positions


@dataclass
class LayerTrace:
    """One layer's figures, averaged over the texts (``layer`` 0 = the input embeddings)."""

    layer: int
    ctx_norm: float  # mean ||state at the Contextual token||
    ctx_top_dim: int  # the dimension with the largest mean |x| there
    ctx_top_share: float  # that dimension's mean |x| over the mean norm
    ctx_spread: float  # mean cosine between different texts' states (1 = the same for every text)
    ctx_pair_gap: float  # mean cosine within paraphrase pairs minus between unrelated texts
    ctx_rest_spread: float  # the same two with the massive dimensions left out (see massive_dims)
    ctx_rest_pair_gap: float
    eos_spread: float
    eos_pair_gap: float
    attn_bos: float  # share of the text tokens' attention on BOS in this layer (None-like -1: no BOS)
    attn_ctx: float  # share on the Contextual token


def spread(x: np.ndarray, same: np.ndarray | None = None) -> float:
    """Mean cosine between different texts' vectors x (n, d), pairs in ``same`` (n, n) left out: near 1
    when a state is the same for every text (a collapsed part, an attention-sink state)."""
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    cos = u @ u.T  # (n, n)
    other = ~np.eye(len(u), dtype=bool) if same is None else ~same & ~np.eye(len(u), dtype=bool)
    return float(cos[other].mean()) if other.any() else 0.0


def massive_dims(x: np.ndarray, factor: float = 20.0) -> np.ndarray:
    """Dimensions of x (n, d) whose mean |x| is over ``factor`` times the median dimension's: the
    massive activations of a sink state, which dominate any cosine and hide what the rest carries."""
    mean_abs = np.abs(x).mean(0)  # (d,)
    return np.flatnonzero(mean_abs > factor * max(float(np.median(mean_abs)), 1e-12))


def _cos_stats(x: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """x (n, d), same (n, n) paraphrase mask -> (mean cosine between other texts, paired gap)."""
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    s = spread(u, same)
    gap = float((u @ u.T)[same].mean() - s) if same.any() else float("nan")
    return s, gap


@torch.inference_mode()
def trace_contextual_token(emb, pairs: list[tuple[str, str]]) -> list[LayerTrace]:  # noqa: ANN001
    """Layer-by-layer figures of ``emb`` (a Causal2Vec :class:`~dec2vec.Embedder`) on paraphrase ``pairs``."""
    if not emb.recipe.contextual_token:
        raise ConfigError(f"recipe '{emb.recipe.name}' has no Contextual token to trace")
    texts = [t for pair in pairs for t in pair]
    n = len(texts)
    same = np.zeros((n, n), dtype=bool)
    for i in range(0, n, 2):
        same[i, i + 1] = same[i + 1, i] = True
    feats = {k: v.to(emb.device) for k, v in emb.tokenize(texts).items()}
    x = emb.input_embeddings(feats)  # (B, T, d)
    mask = feats["attention_mask"]  # (B, T)
    hidden, attn = run_decoder_traced(emb.backbone, x, mask)
    ctx, eos = feats["ctx_index"], feats["eos_index"]  # (B,)
    has_bos = bool((ctx > 0).all())
    # queries: the text's tokens and EOS (after the Contextual token), real positions only
    T = mask.shape[1]
    pos = torch.arange(T, device=mask.device)[None, :]  # (1, T)
    query = (pos > ctx[:, None]) & mask.bool()  # (B, T)
    out = []
    for layer, h in enumerate(hidden):
        hc = gather_positions(h.float(), ctx).cpu().numpy()  # (B, d)
        he = gather_positions(h.float(), eos).cpu().numpy()
        norms = np.linalg.norm(hc, axis=1)
        mean_abs = np.abs(hc).mean(0)  # (d,)
        top = int(mean_abs.argmax())
        c_spread, c_gap = _cos_stats(hc, same)
        rest = np.delete(hc, massive_dims(hc), axis=1)  # (B, d - k)
        r_spread, r_gap = _cos_stats(rest, same)
        e_spread, e_gap = _cos_stats(he, same)
        a_bos = a_ctx = float("nan")
        if layer < len(attn):
            a = attn[layer].float().mean(1)  # (B, T, T): heads averaged
            rows = a[query]  # (Q, T)
            a_ctx = float(rows.gather(1, ctx.repeat_interleave(query.sum(1))[:, None]).mean())
            a_bos = float(rows[:, 0].mean()) if has_bos else float("nan")
        out.append(
            LayerTrace(
                layer=layer,
                ctx_norm=float(norms.mean()),
                ctx_top_dim=top,
                ctx_top_share=float(mean_abs[top] / norms.mean()),
                ctx_spread=c_spread,
                ctx_pair_gap=c_gap,
                ctx_rest_spread=r_spread,
                ctx_rest_pair_gap=r_gap,
                eos_spread=e_spread,
                eos_pair_gap=e_gap,
                attn_bos=a_bos,
                attn_ctx=a_ctx,
            )
        )
    return out
