"""Read the evaluation packages' files into plain rows; nothing task-specific happens here.

The packages and their coordinates are the ones the training corpora's leakage filter checks
(:data:`dec2vec.corpora.leakage.EVAL_SOURCES`), so both sides always read the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..corpora.fetch import Source, locate_pypi
from ..corpora.leakage import EVAL_SOURCES, read_news, read_rotten_tomatoes, read_wiki_summaries
from ..errors import SourceError

LEE_DOCS = "test/test_data/lee.cor"
LEE_SIMILARITIES = "test/test_data/similarities0-1.txt"
WIKI_SUMMARIES = "data/summaries_en-us.json"
ROTTEN_TOMATOES = "data/rotten_tomatoes_corpus_full.csv.bz2"
NEWS = "data/en/NewsArticles.zip"

# evaluation source name (as in EVAL_SOURCES) -> the files the tasks read from it
FILES: dict[str, tuple[str, ...]] = {
    "gensim-lee": (LEE_DOCS, LEE_SIMILARITIES),
    "wikipedia-vital-articles": (WIKI_SUMMARIES,),
    "rotten-tomatoes": (ROTTEN_TOMATOES,),
    "news-articles": (NEWS,),
}


def locate(name: str) -> Source:
    """The installed package behind evaluation source ``name``, with the task files pinned (hashed)."""
    spec = next((s for s in EVAL_SOURCES if s.name == name), None)
    if spec is None:
        raise SourceError(f"unknown evaluation source {name!r}")
    return locate_pypi(spec.module, spec.dist, spec.requirement, FILES[name])


def _decode(raw: bytes) -> str:
    # lee.cor is Latin-1 (a pound sign is byte 0xA3); accept UTF-8 too in case a later release converts it
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_lee(docs: Path, similarities: Path) -> tuple[list[str], list[list[float]]]:
    """The Lee documents (one per line) and the square matrix of mean human similarity ratings in [0, 1].

    The matrix file is tab-separated with only the upper triangle filled (zeros below the diagonal).
    """
    texts = _decode(docs.read_bytes()).splitlines()
    rows = [ln for ln in similarities.read_text(encoding="ascii").splitlines() if ln.strip()]
    matrix = [[float(x) for x in ln.split()] for ln in rows]
    if len(matrix) != len(texts) or any(len(r) != len(texts) for r in matrix):
        raise SourceError(
            f"{similarities.name} is {len(matrix)}x{len(matrix[0]) if matrix else 0} but {docs.name} has "
            f"{len(texts)} documents"
        )
    return texts, matrix


@dataclass(frozen=True)
class WikiArticle:
    title: str
    extract: str  # the lead summary
    description: str  # Wikipedia's short description
    topic: str  # one of 11 Vital Articles topics, or "Uncategorized"


def read_wiki(path: Path) -> list[WikiArticle]:
    """Every article, sorted by title, so that later seeded draws do not depend on the file's order."""
    out = []
    for key, e in read_wiki_summaries(path).items():
        out.append(
            WikiArticle(
                title=str(e.get("title") or key),
                extract=str(e.get("extract") or "").strip(),
                description=str(e.get("description") or "").strip(),
                topic=str(e.get("topic") or "Uncategorized"),
            )
        )
    return sorted(out, key=lambda a: a.title)


@dataclass(frozen=True)
class Review:
    text: str
    label: str  # "fresh" or "rotten"
    movie: str


def read_reviews(path: Path) -> list[Review]:
    """The review snippets (plot summaries, the third category, are left out) in file order."""
    return [
        Review(text=(r.get("text") or "").strip(), label=r["category"], movie=r.get("movie_name") or "")
        for r in read_rotten_tomatoes(path)
        if r.get("category") in ("fresh", "rotten")
    ]


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    body: str


def read_articles(path: Path) -> list[Article]:
    return [
        Article(id=str(r["article_id"]), title=(r.get("title") or "").strip(), body=(r.get("text") or "").strip())
        for r in read_news(path)
    ]
