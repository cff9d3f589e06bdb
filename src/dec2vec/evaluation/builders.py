"""How each evaluation task is made from the rows :mod:`dec2vec.corpora.readers` reads: pure functions of (rows, seed).

Every random choice uses its own ``random.Random`` seeded with (seed, task, purpose) after sorting
the items by a stable id, so a task is identical across runs and machines and one task's draws never
shift another's. Each builder returns the full task, its ``quick`` subset (small, for a fast run;
its texts are a subset of the full task's) and statistics for the manifest.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..corpora.readers import Article, Review, WikiArticle
from .bm25 import bm25_top_k
from .tasks import ClassificationData, ClusteringData, RerankingData, RetrievalData, STSData

T = TypeVar("T")
Built = tuple[Any, Any, dict[str, Any]]  # (full payload, quick payload, stats)

UNLABELLED = "Uncategorized"  # the Vital Articles topic of the 1,000 pages without one of the 11 labels
TEST_FRACTION = 0.25
CANDIDATES = 20


@dataclass(frozen=True)
class QuickSizes:
    """Sizes of the quick variants (upper bounds: a smaller source gives what it has)."""

    vital_train_per_label: int = 8  # the quick clustering set is these texts plus the quick test ones
    vital_test_per_label: int = 6
    reviews_train_per_label: int = 8  # = mteb's samples_per_label in the quick settings: all are used
    reviews_test_per_label: int = 50
    wiki_queries: int = 20
    wiki_corpus: int = 120  # relevant documents, the quick reranking candidates, then random others
    news_queries: int = 20
    news_corpus: int = 40
    rerank_queries: int = 5  # the first quick retrieval queries, so a quick run embeds their documents once
    lee_documents: int = 30  # quick STS: every pair among these (435)


QUICK = QuickSizes()


def norm(text: str) -> str:
    """Lowercased, whitespace collapsed: the key for duplicates here and for the leakage test."""
    return " ".join(text.lower().split())


def rng(seed: int, task: str, purpose: str) -> random.Random:
    return random.Random(f"{seed}:{task}:{purpose}")  # str seeds are hashed with sha512: stable across runs


def stratified_split(
    items: Sequence[T], label: Callable[[T], str], fraction: float, r: random.Random
) -> tuple[list[T], list[T]]:
    """(train, test) with ``round(fraction * n)`` of each label's ``n`` items in test; input order kept."""
    test = _draw_per_label(items, label, lambda n: round(fraction * n), r)
    return [it for i, it in enumerate(items) if i not in test], [it for i, it in enumerate(items) if i in test]


def _draw_per_label(
    items: Sequence[T], label: Callable[[T], str], count: Callable[[int], int], r: random.Random
) -> set[int]:
    """Indices of ``count(n)`` items drawn at random from each label's ``n`` (labels in sorted order)."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_label[label(it)].append(i)
    drawn: set[int] = set()
    for lab in sorted(by_label):
        idx = by_label[lab]
        r.shuffle(idx)
        drawn.update(idx[: count(len(idx))])
    return drawn


def group_split(
    items: Sequence[T], group: Callable[[T], Hashable], fraction: float, r: random.Random
) -> tuple[list[T], list[T]]:
    """(train, test) with whole groups on one side: ``round(fraction * groups)`` groups go to test."""
    groups = sorted({str(group(it)) for it in items})
    r.shuffle(groups)
    test = set(groups[: round(fraction * len(groups))])
    return [it for it in items if str(group(it)) not in test], [it for it in items if str(group(it)) in test]


def per_label(items: Sequence[T], label: Callable[[T], str], k: int, r: random.Random) -> list[T]:
    """At most ``k`` items of each label, drawn at random; input order kept."""
    keep = _draw_per_label(items, label, lambda n: k, r)
    return [it for i, it in enumerate(items) if i in keep]


def sample(items: Sequence[T], k: int, r: random.Random) -> list[T]:
    """At most ``k`` items drawn at random; input order kept."""
    keep = set(r.sample(range(len(items)), min(k, len(items))))
    return [it for i, it in enumerate(items) if i in keep]


# ---------------------------------------------------------------------------------------------- STS


def lee_sts(texts: list[str], matrix: list[list[float]], seed: int, quick: QuickSizes | None = None) -> Built:
    """Every pair i < j of non-empty documents, scored by the upper triangle of the mean-rating matrix.

    The quick variant keeps every pair among ``lee_documents`` randomly chosen documents.
    """
    quick = quick or QUICK  # read at call time, so a changed QUICK applies
    keep = [i for i, t in enumerate(texts) if t.strip()]

    def make(docs: list[int]) -> STSData:
        new = {old: new for new, old in enumerate(docs)}
        pairs = [(new[i], new[j], matrix[i][j]) for i in docs for j in docs if i < j]
        return STSData(texts=[texts[i].strip() for i in docs], pairs=pairs)

    full = make(keep)
    small = make(sorted(sample(keep, quick.lee_documents, rng(seed, "lee-sts", "quick"))))
    stats = {
        "documents": len(keep),
        "pairs": len(full.pairs),
        "dropped_empty": len(texts) - len(keep),
        "quick_documents": len(small.texts),
        "quick_pairs": len(small.pairs),
    }
    return full, small, stats


# ---------------------------------------------------------------------------------------------- Vital Articles


def labelled(articles: Sequence[WikiArticle]) -> list[WikiArticle]:
    return [a for a in articles if a.topic != UNLABELLED and a.extract]


def vital_classification(articles: Sequence[WikiArticle], seed: int, quick: QuickSizes | None = None) -> Built:
    """Lead summary → topic, 11 classes; a stratified 75/25 train/test split of the labelled articles."""
    quick = quick or QUICK  # read at call time, so a changed QUICK applies
    name = "vital-topic-classification"
    items = labelled(articles)
    train, test = stratified_split(items, lambda a: a.topic, TEST_FRACTION, rng(seed, name, "split"))
    q_train = per_label(train, lambda a: a.topic, quick.vital_train_per_label, rng(seed, name, "quick-train"))
    q_test = per_label(test, lambda a: a.topic, quick.vital_test_per_label, rng(seed, name, "quick-test"))
    labels = sorted({a.topic for a in items})

    def make(tr: list[WikiArticle], te: list[WikiArticle]) -> ClassificationData:
        return ClassificationData(
            labels, [a.extract for a in tr], [a.topic for a in tr], [a.extract for a in te], [a.topic for a in te]
        )

    stats = {
        "labelled": len(items),
        "classes": len(labels),
        "train": len(train),
        "test": len(test),
        "quick_train": len(q_train),
        "quick_test": len(q_test),
        "per_label": dict(sorted(Counter(a.topic for a in items).items())),
    }
    return make(train, test), make(q_train, q_test), stats


def vital_clustering(articles: Sequence[WikiArticle], seed: int, quick: QuickSizes | None = None) -> Built:
    """Every labelled lead summary with its topic.

    The quick variant clusters exactly the quick classification texts (train and test), so a quick
    run embeds them once for both tasks (the two tasks share their instruction too).
    """
    items = labelled(articles)
    _, q, _ = vital_classification(articles, seed, quick)
    stats = {
        "texts": len(items),
        "classes": len({a.topic for a in items}),
        "quick_texts": len(q.train_texts) + len(q.test_texts),
    }
    return (
        ClusteringData([a.extract for a in items], [a.topic for a in items]),
        ClusteringData(q.train_texts + q.test_texts, q.train_labels + q.test_labels),
        stats,
    )


def _description_queries(articles: Sequence[WikiArticle]) -> tuple[list[WikiArticle], dict[str, int]]:
    """Articles whose short description is non-empty and shared with no other article (an ambiguous
    query like "family of birds", 34 pages, has no single answer)."""
    with_summary = [a for a in articles if a.extract]
    counts = Counter(norm(a.description) for a in with_summary if a.description)
    queries = [a for a in with_summary if a.description and counts[norm(a.description)] == 1]
    stats = {
        "no_description": sum(1 for a in with_summary if not a.description),
        "shared_description": sum(1 for a in with_summary if a.description and counts[norm(a.description)] > 1),
    }
    return queries, stats


def _quick_wiki_queries(queries: Sequence[WikiArticle], seed: int, quick: QuickSizes) -> list[WikiArticle]:
    """The quick retrieval queries; the quick reranking task takes the first ``rerank_queries`` of them."""
    return sample(queries, quick.wiki_queries, rng(seed, "wiki-description-retrieval", "quick-queries"))


def _candidates(
    queries: Sequence[WikiArticle], with_summary: Sequence[WikiArticle]
) -> tuple[dict[str, list[str]], int]:
    """BM25's top ``CANDIDATES`` summaries per query, the relevant one put in place of the last when
    missed, listed by id (not rank); and how many queries BM25 answered on its own."""
    titles = [a.title for a in with_summary]
    top = bm25_top_k([a.description for a in queries], [a.extract for a in with_summary], k=CANDIDATES)
    out: dict[str, list[str]] = {}
    hits = 0
    for a, ranked in zip(queries, top, strict=True):
        docs = [titles[i] for i in ranked]
        if a.title in docs:
            hits += 1
        else:
            docs[-1] = a.title
        out[f"q:{a.title}"] = sorted(docs)
    return out, hits


def wiki_retrieval(articles: Sequence[WikiArticle], seed: int, quick: QuickSizes | None = None) -> Built:
    """Short description → the lead summary of its own page, over every page's summary (ids: titles)."""
    quick = quick or QUICK  # read at call time, so a changed QUICK applies
    name = "wiki-description-retrieval"
    corpus = {a.title: a.extract for a in articles if a.extract}
    queries, qstats = _description_queries(articles)
    full = RetrievalData(
        {f"q:{a.title}": a.description for a in queries}, corpus, {f"q:{a.title}": {a.title: 1} for a in queries}
    )
    q_queries = _quick_wiki_queries(queries, seed, quick)
    candidates, _ = _candidates(q_queries[: quick.rerank_queries], [a for a in articles if a.extract])
    must = {a.title for a in q_queries} | {t for docs in candidates.values() for t in docs}
    others = sample(
        [t for t in corpus if t not in must], max(0, quick.wiki_corpus - len(must)), rng(seed, name, "quick-corpus")
    )
    keep = must | set(others)
    q_corpus = {t: text for t, text in corpus.items() if t in keep}
    small = RetrievalData(
        {f"q:{a.title}": a.description for a in q_queries}, q_corpus, {f"q:{a.title}": {a.title: 1} for a in q_queries}
    )
    stats = {
        "queries": len(queries),
        "corpus": len(corpus),
        **qstats,
        "quick_queries": len(q_queries),
        "quick_corpus": len(q_corpus),
    }
    return full, small, stats


def wiki_reranking(articles: Sequence[WikiArticle], seed: int, quick: QuickSizes | None = None) -> Built:
    """Every retrieval query with ``CANDIDATES`` summaries: BM25's top ones over the whole corpus, with
    the relevant summary put in place of the last when BM25 missed it. Candidates are listed by id,
    not by BM25 rank, so their order says nothing about relevance."""
    quick = quick or QUICK  # read at call time, so a changed QUICK applies
    with_summary = [a for a in articles if a.extract]
    queries, qstats = _description_queries(articles)
    candidates, hits = _candidates(queries, with_summary)

    def make(qs: Sequence[WikiArticle]) -> RerankingData:
        cand = {f"q:{a.title}": candidates[f"q:{a.title}"] for a in qs}
        used = {d for ds in cand.values() for d in ds}
        return RerankingData(
            queries={f"q:{a.title}": a.description for a in qs},
            corpus={a.title: a.extract for a in with_summary if a.title in used},
            qrels={f"q:{a.title}": {a.title: 1} for a in qs},
            candidates=cand,
        )

    full = make(queries)
    small = make(_quick_wiki_queries(queries, seed, quick)[: quick.rerank_queries])
    stats = {
        "queries": len(queries),
        "candidates_per_query": CANDIDATES,
        "corpus": len(full.corpus),
        "retriever": "BM25 (k1=1.5, b=0.75, scikit-learn CountVectorizer tokens)",
        "bm25_recall_at_20": round(hits / max(1, len(queries)), 4),
        **qstats,
        "quick_queries": len(small.queries),
        "quick_corpus": len(small.corpus),
    }
    return full, small, stats


# ---------------------------------------------------------------------------------------------- Rotten Tomatoes


def rotten_tomatoes(reviews: Sequence[Review], seed: int, quick: QuickSizes | None = None) -> Built:
    """Review snippet → fresh/rotten. Empty snippets go; a snippet seen twice is kept once, or dropped
    if its copies disagree on the label. Split by movie (25% of movies to test), so no movie's reviews
    are on both sides and a classifier cannot score by recognising the film."""
    quick = quick or QUICK  # read at call time, so a changed QUICK applies
    name = "rotten-tomatoes-classification"
    labels_of: dict[str, set[str]] = defaultdict(set)
    for r in reviews:
        if r.text:
            labels_of[norm(r.text)].add(r.label)
    seen: set[str] = set()
    items: list[Review] = []
    for r in reviews:
        key = norm(r.text)
        if r.text and len(labels_of[key]) == 1 and key not in seen:
            seen.add(key)
            items.append(r)
    train, test = group_split(items, lambda r: r.movie, TEST_FRACTION, rng(seed, name, "split"))
    q_train = per_label(train, lambda r: r.label, quick.reviews_train_per_label, rng(seed, name, "quick-train"))
    q_test = per_label(test, lambda r: r.label, quick.reviews_test_per_label, rng(seed, name, "quick-test"))
    labels = ["fresh", "rotten"]

    def make(tr: list[Review], te: list[Review]) -> ClassificationData:
        return ClassificationData(
            labels, [r.text for r in tr], [r.label for r in tr], [r.text for r in te], [r.label for r in te]
        )

    stats = {
        "reviews": len(reviews),
        "dropped_empty": sum(1 for r in reviews if not r.text),
        "dropped_conflicting": sum(1 for r in reviews if r.text and len(labels_of[norm(r.text)]) > 1),
        "dropped_duplicate": sum(1 for r in reviews if r.text and len(labels_of[norm(r.text)]) == 1) - len(items),
        "kept": len(items),
        "train": len(train),
        "test": len(test),
        "test_movies": len({r.movie for r in test}),
        "per_label": dict(sorted(Counter(r.label for r in items).items())),
        "quick_train": len(q_train),
        "quick_test": len(q_test),
    }
    return make(train, test), make(q_train, q_test), stats


# ---------------------------------------------------------------------------------------------- news


def quick_retrieval(full: RetrievalData, query_ids: Sequence[str], corpus_size: int, r: random.Random) -> RetrievalData:
    """The quick variant of a retrieval task: these queries, their relevant documents, random others up to
    ``corpus_size`` documents."""
    gold = {d for q in query_ids for d in full.qrels[q]}
    others = sample([d for d in full.corpus if d not in gold], max(0, corpus_size - len(gold)), r)
    keep = gold | set(others)
    return RetrievalData(
        {q: full.queries[q] for q in query_ids},
        {d: t for d, t in full.corpus.items() if d in keep},
        {q: dict(full.qrels[q]) for q in query_ids},
    )


def news_retrieval(articles: Sequence[Article], seed: int, quick: QuickSizes | None = None) -> Built:
    """Headline → article body. The corpus is every non-empty body, a repeated body kept once (the
    first article's id); a query is every non-empty headline that no other article shares, and its
    relevant document is its body's kept copy."""
    quick = quick or QUICK  # read at call time, so a changed QUICK applies
    name = "news-title-retrieval"
    doc_of: dict[str, str] = {}  # normalised body -> id of the kept copy
    corpus: dict[str, str] = {}
    for a in articles:
        if a.body and norm(a.body) not in doc_of:
            doc_of[norm(a.body)] = f"news:{a.id}"
            corpus[f"news:{a.id}"] = a.body
    title_counts = Counter(norm(a.title) for a in articles if a.title)
    queries = [a for a in articles if a.title and a.body and title_counts[norm(a.title)] == 1]
    qrels = {f"q:{a.id}": {doc_of[norm(a.body)]: 1} for a in queries}
    full = RetrievalData({f"q:{a.id}": a.title for a in queries}, corpus, qrels)
    q_queries = sample(queries, quick.news_queries, rng(seed, name, "quick-queries"))
    gold = {doc_of[norm(a.body)] for a in q_queries}
    others = sample(
        [d for d in corpus if d not in gold], max(0, quick.news_corpus - len(gold)), rng(seed, name, "quick-corpus")
    )
    keep = gold | set(others)
    small = RetrievalData(
        {f"q:{a.id}": a.title for a in q_queries},
        {d: t for d, t in corpus.items() if d in keep},
        {f"q:{a.id}": qrels[f"q:{a.id}"] for a in q_queries},
    )
    stats = {
        "articles": len(articles),
        "queries": len(queries),
        "corpus": len(corpus),
        "dropped_empty_title": sum(1 for a in articles if not a.title),
        "dropped_empty_body": sum(1 for a in articles if not a.body),
        "dropped_shared_title": sum(1 for a in articles if a.title and title_counts[norm(a.title)] > 1),
        "duplicate_bodies": sum(1 for a in articles if a.body) - len(corpus),
        "quick_queries": len(small.queries),
        "quick_corpus": len(small.corpus),
    }
    return full, small, stats
