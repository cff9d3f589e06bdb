"""Length tasks from the news articles: standfirst → long passage retrieval, and graded paragraph similarity.

Both cut article bodies into *windows*: whole sentences taken in order until the next one would
pass a proxy-token cap (:func:`lengths.proxy_tokens`). Each article is given one **length class**
at random (seeded by its id): its texts are windows of that class only, so every class holds a
random share of the same articles and a model's score per class (``lengths.by_bucket``) shows how
it holds up as texts grow, on items of the same kind and difficulty. The classes match the report's
buckets: 32–64, 65–128, 129–256 and 257–440 proxy tokens (the last about 280–510 SmolLM2 tokens:
the chunks users embed); the paragraph task uses the two longer ones (129–440).

Paragraph similarity has three grades, from how the texts were published, not from a model:
2 = the first and the second window of the **same article** (the same story, told on);
1 = windows of two articles filed under the **same topic section** of an outlet (politics, sport,
economy …, read from the article URL and mapped across outlets by :data:`TOPICS`);
0 = windows of articles of **different topics**. Every article contributes one pair of each grade
(its first window against its second, against a same-topic article's second, against an other-topic
article's second, the partners drawn from the same length class), so the grades are balanced within
every class and each text is seen in more than one grade.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlparse

from ..corpora.readers import Article
from ..corpora.text import normalise, split_sentences
from .builders import QUICK, Built, QuickSizes, norm, per_label, quick_retrieval, rng, sample
from .lengths import proxy_tokens
from .tasks import RetrievalData, STSData

# length classes (lowest, highest proxy tokens) of the retrieval passages and of the paragraphs
PASSAGE_CLASSES: tuple[tuple[int, int], ...] = ((32, 64), (65, 128), (129, 256), (257, 440))
PARAGRAPH_CLASSES: tuple[tuple[int, int], ...] = PASSAGE_CLASSES[2:]  # paragraphs: 129–440
QUERY_MIN_WORDS = 6
PER_TOPIC = 14  # articles per topic and length class in the paragraph task

# (outlet host without www., first URL path segment) -> topic; the sections whose name is a topic
TOPICS: dict[tuple[str, str], str] = {
    ("tass.com", "politics"): "politics",
    ("abcnews.go.com", "Politics"): "politics",
    ("tass.com", "economy"): "economy",
    ("abcnews.go.com", "Business"): "economy",
    ("tass.com", "sport"): "sport",
    ("abcnews.go.com", "Sports"): "sport",
    ("bbc.co.uk", "sport"): "sport",
    ("rte.ie", "sport"): "sport",
    ("tass.com", "science"): "science and technology",
    ("abcnews.go.com", "Technology"): "science and technology",
    ("abcnews.go.com", "Health"): "health",
    ("abcnews.go.com", "Entertainment"): "entertainment",
    ("rte.ie", "entertainment"): "entertainment",
    ("tass.com", "defense"): "defence",
    ("tass.com", "society"): "society",
}


def topic_of(link: str) -> str | None:
    """The topic of an article's URL section (see :data:`TOPICS`), or None."""
    u = urlparse(link)
    parts = [p for p in u.path.split("/") if p]
    host = u.netloc.lower().removeprefix("www.")
    return TOPICS.get((host, parts[0])) if parts else None


def windows(text: str, lo: int, hi: int) -> list[str]:
    """Consecutive windows of whole sentences, each at most ``hi`` proxy tokens; those under ``lo`` are dropped.

    A sentence longer than ``hi`` on its own ends the windows (nothing after it is used): it is
    usually a table or list run together, not prose.
    """
    out: list[str] = []
    cur: list[str] = []
    n = 0
    for sentence in split_sentences(text):
        k = proxy_tokens(sentence)
        if k > hi:
            break
        if cur and n + k > hi:
            out.append(" ".join(cur))
            cur, n = [], 0
        cur.append(sentence)
        n += k
    if cur:
        out.append(" ".join(cur))
    return [w for w in out if proxy_tokens(w) >= lo]


def length_class(task: str, article_id: str, classes: Sequence[tuple[int, int]], seed: int) -> tuple[int, int]:
    """The article's length class in ``task``: a seeded draw per article, independent of every other."""
    return rng(seed, task, f"class:{article_id}").choice(list(classes))


def _lead(a: Article, cls: tuple[int, int]) -> str | None:
    w = windows(a.body, 0, cls[1])
    return w[0] if w and proxy_tokens(w[0]) >= cls[0] else None


def news_passage_retrieval(articles: Sequence[Article], seed: int, quick: QuickSizes | None = None) -> Built:
    """Standfirst (subtitle) → the article's lead passage, cut to the article's length class, over every article's.

    A query is a standfirst of at least six words that no other article shares and that does not
    occur word for word in its own passage (some outlets repeat it as the first sentence, which would
    make the task string matching). The corpus holds every article's lead passage, a repeated one once.
    """
    quick = quick or QUICK
    name = "news-passage-retrieval"
    doc_of: dict[str, str] = {}
    corpus: dict[str, str] = {}
    lead: dict[str, str] = {}
    for a in articles:
        p = _lead(a, length_class(name, a.id, PASSAGE_CLASSES, seed))
        if p is None:
            continue
        lead[a.id] = p
        if norm(p) not in doc_of:
            doc_of[norm(p)] = f"np:{a.id}"
            corpus[f"np:{a.id}"] = p
    counts = Counter(norm(a.subtitle) for a in articles if a.subtitle)
    queries = [
        a
        for a in articles
        if a.id in lead
        and len(a.subtitle.split()) >= QUERY_MIN_WORDS
        and counts[norm(a.subtitle)] == 1
        and normalise(a.subtitle) not in normalise(lead[a.id])
    ]
    qrels = {f"q:{a.id}": {doc_of[norm(lead[a.id])]: 1} for a in queries}
    full = RetrievalData({f"q:{a.id}": a.subtitle for a in queries}, corpus, qrels)
    q_queries = sample(queries, quick.news_queries, rng(seed, name, "quick-queries"))
    small = quick_retrieval(full, [f"q:{a.id}" for a in q_queries], quick.news_corpus, rng(seed, name, "quick-corpus"))
    lengths = sorted(proxy_tokens(t) for t in corpus.values())
    stats = {
        "articles": len(articles),
        "passages": len(corpus),
        "queries": len(queries),
        "passage_proxy_tokens_min_median_max": [lengths[0], lengths[len(lengths) // 2], lengths[-1]] if lengths else [],
        "queries_per_class": dict(
            sorted(
                Counter(
                    f"{c[0]}-{c[1]}" for a in queries for c in [length_class(name, a.id, PASSAGE_CLASSES, seed)]
                ).items()
            )
        ),
        "quick_queries": len(small.queries),
        "quick_corpus": len(small.corpus),
    }
    return full, small, stats


def paragraph_candidates(
    articles: Sequence[Article], seed: int
) -> list[tuple[Article, str, tuple[int, int], str, str]]:
    """(article, topic, length class, first window, second window) of every article with a topic and
    two windows of its class."""
    out = []
    seen: set[str] = set()
    for a in articles:
        t = topic_of(a.link)
        if t is None or norm(a.body) in seen:
            continue
        cls = length_class("news-paragraph-sts", a.id, PARAGRAPH_CLASSES, seed)
        w = windows(a.body, 0, cls[1])
        if len(w) >= 2 and all(proxy_tokens(x) >= cls[0] for x in w[:2]):
            seen.add(norm(a.body))
            out.append((a, t, cls, w[0], w[1]))
    return out


def graded_pairs(cands: Sequence[tuple[Article, str, tuple[int, int], str, str]], seed: int, purpose: str) -> STSData:
    """One pair of each grade per article (see the module docstring), partners of the same length
    class; an article without a same-topic and an other-topic partner in its class gives none."""
    r = rng(seed, "news-paragraph-sts", purpose)
    texts: list[str] = []
    index: dict[str, int] = {}

    def at(text: str) -> int:
        if text not in index:
            index[text] = len(texts)
            texts.append(text)
        return index[text]

    pairs: list[tuple[int, int, float]] = []
    for i, (_, t, cls, first, second) in enumerate(cands):
        same = [j for j, c in enumerate(cands) if j != i and c[2] == cls and c[1] == t]
        other = [j for j, c in enumerate(cands) if c[2] == cls and c[1] != t]
        if not same or not other:
            continue
        j, k = r.choice(same), r.choice(other)
        pairs.append((at(first), at(second), 2.0))
        pairs.append((at(first), at(cands[j][4]), 1.0))
        pairs.append((at(first), at(cands[k][4]), 0.0))
    return STSData(texts, pairs, 0.0, 2.0)


def news_paragraph_sts(articles: Sequence[Article], seed: int, quick: QuickSizes | None = None) -> Built:
    """Graded similarity of news paragraphs (129–440 proxy tokens): same article 2, same topic 1, other 0.

    At most ``PER_TOPIC`` articles per topic and length class (politics alone has over 200): the task then reads as many
    topics as it can rather than mostly politics, and stays small enough to run whole in the
    standard tier."""
    quick = quick or QUICK
    every = paragraph_candidates(articles, seed)
    cands = per_label(every, lambda c: f"{c[1]}:{c[2]}", PER_TOPIC, rng(seed, "news-paragraph-sts", "per-topic"))
    full = graded_pairs(cands, seed, "full")
    small_c = per_label(
        cands, lambda c: c[1], max(1, quick.lee_documents // 10), rng(seed, "news-paragraph-sts", "quick")
    )
    small = graded_pairs(small_c, seed, "quick")
    stats = {
        "articles_with_topic_and_two_windows": len(every),
        "per_topic": dict(sorted(Counter(c[1] for c in every).items())),
        "articles_used": len(cands),
        "per_class": dict(sorted(Counter(f"{c[2][0]}-{c[2][1]}" for c in cands).items())),
        "texts": len(full.texts),
        "pairs": len(full.pairs),
        "quick_pairs": len(small.pairs),
    }
    return full, small, stats
