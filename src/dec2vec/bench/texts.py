"""Benchmark texts: a realistic mix of lengths from the offline corpora, and fixed-length texts.

The mix draws from the packages the evaluation already reads (no network): review snippets
(a sentence), Wikipedia lead summaries (a paragraph), Lee news documents and news article
bodies (several paragraphs, cut at 2,000 characters), so lengths range from ~10 to ~500 tokens.
A bench can also read its texts from a file, e.g. on a machine without those packages.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ..errors import InputError, SourceError

# share of each source in the mix; the mean lands near 100 backbone tokens per text
MIX = {"reviews": 0.35, "wiki": 0.40, "lee": 0.10, "news": 0.15}
NEWS_CHARS = 2000


def _pools() -> dict[str, list[str]]:
    from ..corpora import readers

    pools: dict[str, list[str]] = {}
    try:
        lee = readers.locate("gensim-lee")
        pools["lee"] = readers.read_lee(lee.path(readers.LEE_DOCS), lee.path(readers.LEE_SIMILARITIES))[0]
        wiki = readers.locate("wikipedia-vital-articles")
        pools["wiki"] = [a.extract for a in readers.read_wiki(wiki.path(readers.WIKI_SUMMARIES))]
        rt = readers.locate("rotten-tomatoes")
        pools["reviews"] = [r.text for r in readers.read_reviews(rt.path(readers.ROTTEN_TOMATOES))]
        news = readers.locate("news-articles")
        pools["news"] = [a.body[:NEWS_CHARS] for a in readers.read_articles(news.path(readers.NEWS))]
    except SourceError as e:
        raise SourceError(f"the benchmark's texts come from the evaluation packages: {e}") from e
    return {k: [t.strip() for t in v if t and t.strip()] for k, v in pools.items()}


def mixed_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` texts drawn (seeded, with replacement only if a source runs out) in the ``MIX`` shares."""
    pools = _pools()
    rng = random.Random(seed)
    out: list[str] = []
    for i, (name, share) in enumerate(MIX.items()):
        k = n - len(out) if i == len(MIX) - 1 else round(n * share)
        pool = pools[name]
        out.extend(rng.sample(pool, k) if k <= len(pool) else rng.choices(pool, k=k))
    rng.shuffle(out)
    return out


def fixed_length_texts(tokenizer: Any, length: int, n: int, source: list[str], seed: int = 0) -> list[str]:
    """``n`` texts of about ``length`` backbone tokens: consecutive token windows of the ``source`` texts, decoded."""
    rng = random.Random(seed)
    stream: list[int] = []
    for text in rng.sample(source, len(source)):
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(stream) >= length * n:
            break
    if not stream:
        raise InputError("no source text to cut fixed-length texts from")
    if len(stream) < length * n:  # a small source: reuse it
        stream = (stream * (length * n // len(stream) + 1))[: length * n]
    body = length - 2  # room for the template's EOS (and BOS where the tokenizer adds one)
    return [tokenizer.decode(stream[i * length : i * length + body]).strip() for i in range(n)]


def write_texts(path: Path, texts: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")


def read_texts(path: Path, n: int | None = None) -> list[str]:
    from ..io import read_texts as read

    texts = read(path).texts
    if n is not None:
        if n > len(texts):
            raise InputError(f"{path} holds {len(texts)} texts; asked for {n}")
        texts = texts[:n]
    return texts
