"""Okapi BM25 over scikit-learn's word counts: the lexical retriever that picks reranking candidates.

BM25 rather than TF-IDF cosine because it is the standard first stage of reranking benchmarks
(MS MARCO, BEIR), so the candidates are the kind a real pipeline would hand to an embedding model.
Tokens are scikit-learn's default (lowercased runs of two or more word characters), no stemming or
stop words; the idf is Lucene's, which is never negative.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bm25_top_k(
    queries: Sequence[str], docs: Sequence[str], k: int = 20, k1: float = 1.5, b: float = 0.75, batch: int = 512
) -> list[list[int]]:
    """For each query, the indices of its ``k`` best documents, best first; ties go to the lower index."""
    from sklearn.feature_extraction.text import CountVectorizer

    vec = CountVectorizer(lowercase=True)
    tf = vec.fit_transform(docs).tocsr().astype(np.float64)  # (D, V) term counts
    n_docs = tf.shape[0]
    lengths = np.asarray(tf.sum(axis=1)).ravel()  # (D,)
    avg = lengths.mean() if n_docs and lengths.mean() > 0 else 1.0
    df = np.bincount(tf.indices, minlength=tf.shape[1])  # (V,) documents containing each term
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    rows = np.repeat(np.arange(n_docs), np.diff(tf.indptr))  # document of each stored count
    t = tf.data
    tf.data = idf[tf.indices] * t * (k1 + 1) / (t + k1 * (1 - b + b * lengths[rows] / avg))
    weights_t = tf.T.tocsr()  # (V, D)
    q = vec.transform(queries).astype(np.float64)  # (Q, V): a repeated query term counts each time
    k = min(k, n_docs)
    out: list[list[int]] = []
    for start in range(0, q.shape[0], batch):
        scores = (q[start : start + batch] @ weights_t).toarray()  # (B, D)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # stable: equal scores keep index order
        out.extend(order.tolist())
    return out
