"""The ``standard`` tier: deterministic subsets of the full tasks, sized to decide within a CPU budget.

Every standard task is cut from the *full* task's data at load time (nothing new is built or read
from the packages), so its texts are a subset of the full tier's and the leakage test of the full
tier covers it. The sizes below were chosen from measured per-item variance against a token budget
(docs/EVALUATION.md, "The standard tier"); ``scripts/size_standard.py`` recomputes that choice from
a pilot run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .builders import per_label, rng, sample
from .datasets import SEED, load_task
from .tasks import ClassificationData, ClusteringData, RerankingData, RetrievalData, STSData, TaskData


@dataclass(frozen=True)
class StandardSizes:
    """Items per standard task (upper bounds: a smaller full task gives what it has)."""

    lee_documents: int = 50  # every Lee document: all 1,225 pairs
    vital_train_per_label: int = 16  # = the standard samples_per_label: every drawn text is used
    vital_test_per_label: int = 64
    reviews_train_per_label: int = 16
    reviews_test_per_label: int = 600
    wiki_queries: int = 400
    wiki_extra_corpus: int = 0  # the reranking candidates are already 1,500 BM25-hard distractors
    news_queries: int = 300
    news_extra_corpus: int = 50
    rerank_queries: int = 160  # the first standard wiki retrieval queries, their 20 candidates each
    passage_queries: int = 240  # standfirst -> lead passage: about 60 per length class
    passage_extra_corpus: int = 30
    paragraph_pairs: int = 0  # 0: every pair of the (already per-topic capped) full task
    word_pairs_per_grade: tuple[tuple[str, int], ...] = (("n", 100), ("v", 50))  # 600 pairs of words


STANDARD_SIZES = StandardSizes()
REVISION = 3  # bump when the subsetting below changes


def _retrieval_subset(full: RetrievalData, queries: list[str], must: set[str], extra: int, r) -> RetrievalData:
    answers = {d for q in queries for d in full.qrels[q]}
    keep = answers | must
    others = sample(sorted(d for d in full.corpus if d not in keep), extra, r)
    keep |= set(others)
    return RetrievalData(
        {q: full.queries[q] for q in queries},
        {d: t for d, t in full.corpus.items() if d in keep},
        {q: dict(full.qrels[q]) for q in queries},
    )


def _classification(full: ClassificationData, name: str, train_k: int, test_k: int, seed: int) -> ClassificationData:
    train = per_label(
        list(zip(full.train_texts, full.train_labels, strict=True)),
        lambda x: x[1],
        train_k,
        rng(seed, name, "standard-train"),
    )
    test = per_label(
        list(zip(full.test_texts, full.test_labels, strict=True)),
        lambda x: x[1],
        test_k,
        rng(seed, name, "standard-test"),
    )
    return ClassificationData(
        list(full.labels), [t for t, _ in train], [y for _, y in train], [t for t, _ in test], [y for _, y in test]
    )


def _wiki_queries(full: RetrievalData, sizes: StandardSizes, seed: int) -> list[str]:
    return sample(sorted(full.queries), sizes.wiki_queries, rng(seed, "wiki-description-retrieval", "standard-queries"))


def _payload(name: str, sizes: StandardSizes, seed: int, cache_dir: Path | None):
    full = load_task(name, quick=False, seed=seed, cache_dir=cache_dir).data
    if name == "lee-sts":
        assert isinstance(full, STSData)
        docs = sorted(sample(list(range(len(full.texts))), sizes.lee_documents, rng(seed, name, "standard")))
        new = {d: i for i, d in enumerate(docs)}
        pairs = [(new[i], new[j], s) for i, j, s in full.pairs if i in new and j in new]
        return STSData([full.texts[d] for d in docs], pairs, full.min_score, full.max_score)
    if name == "vital-topic-classification":
        return _classification(full, name, sizes.vital_train_per_label, sizes.vital_test_per_label, seed)
    if name == "rotten-tomatoes-classification":
        return _classification(full, name, sizes.reviews_train_per_label, sizes.reviews_test_per_label, seed)
    if name == "vital-topic-clustering":  # the standard classification texts, as the quick tier does
        cls = _payload("vital-topic-classification", sizes, seed, cache_dir)
        return ClusteringData(cls.train_texts + cls.test_texts, cls.train_labels + cls.test_labels)
    if name == "wiki-description-reranking":
        assert isinstance(full, RerankingData)
        ret = load_task("wiki-description-retrieval", quick=False, seed=seed, cache_dir=cache_dir).data
        qs = _wiki_queries(ret, sizes, seed)[: sizes.rerank_queries]
        cand = {q: list(full.candidates[q]) for q in qs}
        used = {d for ds in cand.values() for d in ds}
        return RerankingData(
            {q: full.queries[q] for q in qs},
            {d: t for d, t in full.corpus.items() if d in used},
            {q: dict(full.qrels[q]) for q in qs},
            cand,
        )
    if name == "wiki-description-retrieval":
        assert isinstance(full, RetrievalData)
        qs = _wiki_queries(full, sizes, seed)
        rerank = _payload("wiki-description-reranking", sizes, seed, cache_dir)
        must = {d for ds in rerank.candidates.values() for d in ds}  # shared with reranking: embedded once
        return _retrieval_subset(full, qs, must, sizes.wiki_extra_corpus, rng(seed, name, "standard-corpus"))
    if name == "news-title-retrieval":
        assert isinstance(full, RetrievalData)
        qs = sample(sorted(full.queries), sizes.news_queries, rng(seed, name, "standard-queries"))
        return _retrieval_subset(full, qs, set(), sizes.news_extra_corpus, rng(seed, name, "standard-corpus"))
    if name == "news-passage-retrieval":
        assert isinstance(full, RetrievalData)
        qs = sample(sorted(full.queries), sizes.passage_queries, rng(seed, name, "standard-queries"))
        return _retrieval_subset(full, qs, set(), sizes.passage_extra_corpus, rng(seed, name, "standard-corpus"))
    if name == "news-paragraph-sts":
        assert isinstance(full, STSData)
        return full
    if name == "wordnet-word-sts":
        assert isinstance(full, STSData)
        blocks = load_task(name, quick=False, seed=seed, cache_dir=cache_dir).stats["pairs_per_pos"]
        return _word_subset(full, blocks, dict(sizes.word_pairs_per_grade), seed)
    raise KeyError(name)


def _word_subset(full: STSData, blocks: list[list[Any]], per_grade: dict[str, int], seed: int) -> STSData:
    """``per_grade[pos]`` pairs of each grade per part of speech, drawn at random, texts renumbered.

    ``blocks`` is the full task's ``pairs_per_pos`` statistic: its pairs come as one run per part of
    speech, in that order."""
    from .wordsim import to_sts

    r = rng(seed, "wordnet-word-sts", "standard")
    out: list[tuple[str, str, int]] = []
    start = 0
    for pos, count in blocks:
        block = full.pairs[start : start + int(count)]
        start += int(count)
        for g in (3.0, 2.0, 1.0, 0.0):
            grade = [p for p in block if p[2] == g]
            out += [(full.texts[i], full.texts[j], int(s)) for i, j, s in sample(grade, per_grade.get(pos, 0), r)]
    return to_sts(out)


def load_standard(
    name: str, *, sizes: StandardSizes = STANDARD_SIZES, seed: int = SEED, cache_dir: Path | None = None
) -> TaskData:
    """The standard variant of task ``name``: a deterministic subset of its full variant."""
    full = load_task(name, quick=False, seed=seed, cache_dir=cache_dir)
    data = _payload(name, sizes, seed, cache_dir)
    stats = {**full.stats, "tier": "standard", "standard_sizes": asdict(sizes), "standard_revision": REVISION}
    return TaskData(name, full.type, full.description, False, data, stats)


def digest(task: TaskData) -> str:
    """sha256 of the standard task's JSON: its identity in the result cache."""
    return hashlib.sha256(json.dumps(task.to_json(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()
