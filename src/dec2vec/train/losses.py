"""Training losses as pure tensor functions: embeddings or logits in, a scalar out.

Nothing here knows about models, so every loss is testable alone and reused by the plain,
the gradient-cached and the multi-process paths alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100  # label value that cross-entropy skips


NO_TEXT = -1  # text id of "no such text" (a hard negative belongs to no query)


def text_ids(texts: list[str | None]) -> torch.Tensor:
    """(n,) int64 ids equal exactly for equal texts, the same in every process (unlike ``hash``)."""
    import hashlib

    out = [
        NO_TEXT if t is None else int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big") >> 1
        for t in texts
    ]
    return torch.tensor(out, dtype=torch.int64)


def false_negative_mask(
    query_ids: torch.Tensor,  # (B,) this process's queries
    positive_ids: torch.Tensor,  # (B,) their positives
    doc_ids: torch.Tensor,  # (N,) every document scored (gathered), positives first per process
    doc_query_ids: torch.Tensor,  # (N,) the query whose positive each document is; NO_TEXT for hard negatives
    offset: int = 0,
) -> torch.Tensor:
    """(B, N) bool, True where a document must not count as a negative of a query.

    A document is a false negative of query i when its text equals i's positive (a repeated
    positive, a SimCSE duplicate, a hard negative that is i's answer) or when it is the positive of
    another query with the same text as i (one definition asked by several examples). Query i's
    own positive, document ``offset + i``, is never masked.
    """
    same_doc = doc_ids[None, :] == positive_ids[:, None]  # (B, N)
    same_query = (doc_query_ids[None, :] == query_ids[:, None]) & (doc_query_ids[None, :] != NO_TEXT)  # (B, N)
    mask = same_doc | same_query
    rows = torch.arange(query_ids.shape[0], device=mask.device)
    mask[rows, rows + offset] = False
    return mask


def info_nce(
    queries: torch.Tensor,  # (B, D)
    documents: torch.Tensor,  # (N, D): the B positives first, then any hard negatives
    temperature: float = 0.05,
    offset: int = 0,
    mask: torch.Tensor | None = None,  # (B, N) bool: documents left out of query i's softmax
) -> torch.Tensor:
    """InfoNCE over cosine similarities: query i's positive is document ``offset + i``.

    Every other document (in-batch positives of other queries, hard negatives, and documents
    gathered from other processes) is a negative, except where ``mask`` (from
    :func:`false_negative_mask`) says it is another copy of the answer. ``offset`` places this
    process's queries in a document list gathered across processes.
    """
    q = F.normalize(queries.float(), dim=-1)
    d = F.normalize(documents.float(), dim=-1)
    scores = q @ d.T / temperature  # (B, N)
    if mask is not None:
        scores = scores.masked_fill(mask.to(scores.device), float("-inf"))
    labels = torch.arange(q.shape[0], device=q.device) + offset  # (B,)
    return F.cross_entropy(scores, labels)


def _cosine(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """(b, D), (n, D) -> (b, n) cosine similarities in float32."""
    return F.normalize(rows.float(), dim=-1) @ F.normalize(cols.float(), dim=-1).T


def _self_mask(b: int, n: int, offset: int, device: torch.device) -> torch.Tensor:
    """(b, n) bool, True at each row's own column ``offset + i`` (a text's similarity to itself is 1 for
    any model and carries no signal)."""
    mask = torch.zeros(b, n, dtype=torch.bool, device=device)
    rows = torch.arange(b, device=device)
    mask[rows, rows + offset] = True
    return mask


def similarity_kl(
    student_rows: torch.Tensor,  # (b, Ds): this process's texts
    student_cols: torch.Tensor,  # (n, Ds): every text of the global batch
    teacher_rows: torch.Tensor,  # (b, Dt)
    teacher_cols: torch.Tensor,  # (n, Dt)
    temperature: float = 0.05,
    offset: int = 0,
) -> torch.Tensor:
    """KL(teacher || student) between the row-softmaxed in-batch cosine matrices, mean over rows.

    Row i is text i's similarity to every other text of the batch (itself left out), over
    ``temperature``, so the student learns the teacher's ranking of neighbours, not its scale;
    student and teacher widths may differ.
    """
    b, n = student_rows.shape[0], student_cols.shape[0]
    if n < 2:
        raise ValueError("a similarity-matrix loss needs at least two texts in the batch")
    own = _self_mask(b, n, offset, student_rows.device)
    s = (_cosine(student_rows, student_cols) / temperature).masked_fill(own, float("-inf"))  # (b, n)
    t = (_cosine(teacher_rows, teacher_cols) / temperature).masked_fill(own, float("-inf"))  # (b, n)
    log_p_s = F.log_softmax(s, dim=-1).masked_fill(own, 0.0)
    log_p_t = F.log_softmax(t, dim=-1).masked_fill(own, 0.0)
    return (log_p_t.exp().masked_fill(own, 0.0) * (log_p_t - log_p_s)).sum(-1).mean()


def similarity_mse(
    student_rows: torch.Tensor,  # (b, Ds)
    student_cols: torch.Tensor,  # (n, Ds)
    teacher_rows: torch.Tensor,  # (b, Dt)
    teacher_cols: torch.Tensor,  # (n, Dt)
    offset: int = 0,
) -> torch.Tensor:
    """Mean squared difference of the in-batch cosine matrices (each text's own column left out)."""
    b, n = student_rows.shape[0], student_cols.shape[0]
    if n < 2:
        raise ValueError("a similarity-matrix loss needs at least two texts in the batch")
    keep = ~_self_mask(b, n, offset, student_rows.device)
    diff = _cosine(student_rows, student_cols) - _cosine(teacher_rows, teacher_cols)  # (b, n)
    return diff[keep].pow(2).mean()


def soft_info_nce(
    queries: torch.Tensor,  # (B, Ds)
    documents: torch.Tensor,  # (N, Ds)
    teacher_queries: torch.Tensor,  # (B, Dt)
    teacher_documents: torch.Tensor,  # (N, Dt)
    temperature: float = 0.05,
    teacher_temperature: float = 0.05,
    soft_weight: float = 1.0,
    offset: int = 0,
    mask: torch.Tensor | None = None,  # (B, N) bool: false negatives, out of both distributions
) -> torch.Tensor:
    """InfoNCE whose target mixes the one-hot positive with the teacher's softmaxed scores.

    target = (1 - soft_weight) * onehot(offset + i) + soft_weight * softmax(teacher cosines / teacher_temperature);
    the loss is the cross-entropy of the student's softmax against it. ``soft_weight = 0`` is plain InfoNCE.
    """
    s = _cosine(queries, documents) / temperature  # (B, N)
    t = _cosine(teacher_queries, teacher_documents) / teacher_temperature  # (B, N)
    B, N = s.shape
    onehot = _self_mask(B, N, offset, s.device).float()
    out = mask.to(s.device) if mask is not None else torch.zeros_like(s, dtype=torch.bool)
    s, t = s.masked_fill(out, float("-inf")), t.masked_fill(out, float("-inf"))
    target = (1.0 - soft_weight) * onehot + soft_weight * F.softmax(t, dim=-1)  # (B, N), rows sum to 1
    log_p = F.log_softmax(s, dim=-1).masked_fill(out, 0.0)
    return -(target * log_p).sum(-1).mean()


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
