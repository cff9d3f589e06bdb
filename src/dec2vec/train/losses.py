"""Training losses as pure tensor functions: embeddings or logits in, a scalar out.

Nothing here knows about models, so every loss is testable alone and reused by the plain,
the gradient-cached and the multi-process paths alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100  # label value that cross-entropy skips


def info_nce(
    queries: torch.Tensor,  # (B, D)
    documents: torch.Tensor,  # (N, D): the B positives first, then any hard negatives
    temperature: float = 0.05,
    offset: int = 0,
) -> torch.Tensor:
    """InfoNCE over cosine similarities: query i's positive is document ``offset + i``.

    Every other document (in-batch positives of other queries, hard negatives, and documents
    gathered from other processes) is a negative. ``offset`` places this process's queries in a
    document list gathered across processes.
    """
    q = F.normalize(queries.float(), dim=-1)
    d = F.normalize(documents.float(), dim=-1)
    scores = q @ d.T / temperature  # (B, N)
    labels = torch.arange(q.shape[0], device=q.device) + offset  # (B,)
    return F.cross_entropy(scores, labels)


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of token i predicted from the logits at i-1.

    logits (B, T, V), labels (B, T) with IGNORE where nothing is predicted. Used by MNTP (labels
    only at masked positions) and by UniMAE's MAR (labels at every real token). Returns 0 when no
    position has a label, so a batch without masked tokens does not produce NaN.
    """
    pred = logits[:, :-1].float()  # (B, T-1, V): position i-1 ...
    target = labels[:, 1:]  # (B, T-1): ... predicts token i
    if not (target != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1), ignore_index=IGNORE)


def next_token_pairs(hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The states that predict each label, and the labels: (B, T, d), (B, T) -> (M, d), (M,).

    Token i is predicted from the state at i-1, so state i-1 is kept wherever label i is set.
    ``token_loss(head(states), targets)`` equals ``next_token_loss(head(hidden), labels)`` but runs
    the vocabulary projection only on the M labelled positions, not on all B*T.
    """
    target = labels[:, 1:]  # (B, T-1): token i ...
    keep = target != IGNORE
    return hidden[:, :-1][keep], target[keep]  # ... from the state at i-1


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy where row t predicts label t (no shift): UniMAE's reconstruction decoder."""
    if not (labels != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)
