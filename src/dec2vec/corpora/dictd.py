"""Dictionary pairs from dictd databases: GCIDE (word → definition, word → quotation) and four glossaries.

A dictd database is an index of tab-separated lines ``word<TAB>offset<TAB>length``, offset and length
in dictd's base64 digits (``A``-``Z``, ``a``-``z``, ``0``-``9``, ``+``, ``/``, most significant
first), into a ``.dict.dz`` text file (dictzip: a gzip file with a random-access table, which plain
gzip reads whole). Several index words can point at one article; articles are read once each.

GCIDE (Debian ``dict-gcide``, the 1913 Webster plus WordNet additions) keeps the 1913 layout::

    Run \\Run\\, n.
       1. The act of running; as, a long run.
          [1913 Webster]

                A canting, mawkish play . . . had an immense run.
                                                  --Macaulay.
          [1913 Webster]

A header (headword, pronunciation between backslashes, part of speech, bracketed etymology), senses
numbered ``1.`` or ``(a)``, literary quotations indented deeper and signed ``--Author.``, and source
tags such as ``[1913 Webster]`` that end each unit. Sub-entries start with the phrase in braces:
``{Run steel}, malleable iron castings.`` Cross-reference braces become plain words; accent codes
such as ``[`u]`` or ``[=a]`` become the bare letter.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .fetch import Source
from .records import Record
from .text import chunk_words

DICTD_DIR = "usr/share/dictd"
MAX_WORDS = 200  # a definition or quotation longer than this keeps its first 200 words (at a sentence break)

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(_B64)}


def b64_number(digits: str) -> int:
    """dictd's base64 number (not RFC 4648 decoding: the digits are one big-endian base-64 integer)."""
    n = 0
    for c in digits:
        n = n * 64 + _B64_VALUE[c]
    return n


def read_dictd(index: Path, dict_dz: Path) -> list[tuple[str, str]]:
    """(first index word, article text) for every distinct article, in file order; ``00-database-*`` skipped."""
    with gzip.open(dict_dz, "rb") as f:
        data = f.read()
    seen: dict[tuple[int, int], str] = {}
    with open(index, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-database") or parts[0].startswith("00database"):
                continue
            key = (b64_number(parts[1]), b64_number(parts[2]))
            seen.setdefault(key, parts[0])
    return [(word, data[o : o + n].decode("utf-8", errors="replace")) for (o, n), word in sorted(seen.items())]


def _first_chunk(text: str) -> str:
    chunks = chunk_words(text, MAX_WORDS)
    return chunks[0] if chunks else ""


def _squash(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------- GCIDE

_ACCENT = re.compile(r"\[([`'^~=\".,\-]?)([A-Za-z]{1,2})([`'^~=\".,\-]?)\]")  # [`u] [=a] [a^] [ae] [-o]
_MAC = re.compile(r"\[([a-z])mac\]")  # [imac]
_TAG_LINE = re.compile(r"^\s*\[[^\]\n]*(?:Webster|WordNet|PJC|Century|Suppl|MW|RJC|JS|DC|F\.)[^\]\n]*\]\s*$")
_SENSE = re.compile(r"^\s*(?:\d+\.|\([a-z]\))\s")
_SENSE_MARK = re.compile(r"^(?:\d+\.\s*)?(?:\([a-z]\)\s*)?(?:Defn:\s*)?")
_ATTRIBUTION = re.compile(r"\s--\s?[A-Z(].*$", re.S)  # "--Shak.", "--Sir W. Scott." at the end of a unit
_LABEL = re.compile(r"\[[^\[\]]{0,40}\]")  # [Obs.], [Colloq. U.S.], leftover bracket groups
_BRACES = re.compile(r"\{([^{}]*)\}")
_POS = re.compile(r"(?:[A-Za-z]{1,6}\.\s?)+")
_NOT_DEFINITION = re.compile(r"^(?:Syn|Note|Usage|See|Same as|Cf|Pl|imp|p\. ?p|p\. ?pr|pres|superl|compar)\b")
_SUBENTRY = re.compile(r"^\{([^{}]+)\}((?:,?\s*(?:or|also)?\s*\{[^{}]+\})*)[,.]?\s+")


def _accents(text: str) -> str:
    return _MAC.sub(r"\1", _ACCENT.sub(lambda m: m.group(2), text))


def _clean(text: str) -> str:
    """Plain text of a GCIDE unit: braces dropped, labels and a trailing attribution removed, spaces squashed."""
    text = _ATTRIBUTION.sub("", _squash(text))
    text = _LABEL.sub("", _BRACES.sub(r"\1", text))
    text = _squash(text.replace("\\", ""))
    return re.sub(r"\s+([,.;:])", r"\1", text).strip(" ;,")


def _strip_header(header: str) -> tuple[str, str]:
    """(headword, what follows the header) of an article's first lines."""
    head, sep, rest = header.partition(" \\")
    if not sep:
        return _squash(head), ""
    _, _, rest = rest.partition("\\")  # the pronunciation
    while True:
        rest = rest.lstrip(" ,;\n")
        if rest and rest[0] in "[(":
            close = {"[": "]", "(": ")"}[rest[0]]
            depth, i = 0, 0
            for i, c in enumerate(rest):  # noqa: B007 (i is used after the loop)
                depth += c == rest[0]
                depth -= c == close
                if depth == 0:
                    break
            rest = rest[i + 1 :]
        elif m := re.match(r"[^\\{}]{1,40}?\s*\\[^\\]*\\", rest):  # a second headword with its pronunciation
            rest = rest[m.end() :]
        elif (m := _POS.match(rest)) and len(m.group(0).split()) <= 4:
            rest = rest[m.end() :]
        else:
            return _squash(head), rest


@dataclass(frozen=True)
class Entry:
    """One GCIDE article: its headword, its definitions and its literary quotations (cleaned)."""

    word: str
    definitions: tuple[tuple[str, str], ...]  # (word or sub-entry phrase, definition)
    quotations: tuple[str, ...]


def _units(lines: list[str]) -> Iterator[list[str]]:
    """Runs of lines separated by blank lines, source tags and the start of a numbered sense."""
    unit: list[str] = []
    for line in lines:
        if not line.strip() or _TAG_LINE.match(line):
            if unit:
                yield unit
            unit = []
            continue
        if _SENSE.match(line) and unit:
            yield unit
            unit = []
        unit.append(line)
    if unit:
        yield unit


def parse_gcide(article: str) -> Entry | None:
    lines = _accents(article).splitlines()
    if not lines or lines[0][:1].isspace():
        return None
    units = list(_units(lines))
    header_lines = units.pop(0)
    word, after = _strip_header("\n".join(header_lines))
    if not word:
        return None
    defs: list[tuple[str, str]] = []
    quotes: list[str] = []
    if after.strip():
        units.insert(0, [after])  # the header's own definition (entries without numbered senses)
    query = word
    for unit in units:
        indent = len(unit[0]) - len(unit[0].lstrip())
        body = "\n".join(unit)
        if indent >= 8 and not _SENSE.match(unit[0]):
            if re.search(r"--\s?[A-Z(]", body):  # signed: a literary quotation
                q = _first_chunk(_clean(body))
                if len(q.split()) >= 4:
                    quotes.append(q)
            continue
        text = _squash(body)
        if re.match(r"\d+\.", text):  # a numbered sense of the headword again, after sub-entries
            query = word
        text = _SENSE_MARK.sub("", text)
        if m := _SUBENTRY.match(text):  # "{Port bar}. …": it and its lettered senses define the phrase
            query, text = _squash(m.group(1)), text[m.end() :]
        d = _clean(text)
        if len(d.split()) >= 2 and not _NOT_DEFINITION.match(d):
            defs.append((query, _first_chunk(d)))
    return Entry(word=word, definitions=tuple(defs), quotations=tuple(quotes))


def gcide_entries(source: Source) -> list[Entry]:
    """Every GCIDE article parsed, once per build (shared by both GCIDE corpora)."""
    if "gcide" not in source.parsed:
        articles = read_dictd(source.path(f"{DICTD_DIR}/gcide.index"), source.path(f"{DICTD_DIR}/gcide.dict.dz"))
        source.parsed["gcide"] = [e for e in (parse_gcide(a) for _, a in articles) if e is not None]
    return source.parsed["gcide"]  # type: ignore[return-value]


def gcide_definitions(source: Source) -> tuple[list[Record], dict[str, int]]:
    """word → definition; grouped by headword, so every sense of a word is in the same split."""
    entries = gcide_entries(source)
    records = [
        Record.of({"query": q, "positive": d}, group=f"gcide:{e.word.casefold()}")
        for e in entries
        for q, d in e.definitions
    ]
    return records, {"articles": len(entries)}


def gcide_quotations(source: Source) -> tuple[list[Record], dict[str, int]]:
    """headword → a literary quotation that uses it."""
    entries = gcide_entries(source)
    records = [
        Record.of({"query": e.word, "positive": q}, group=f"gcide:{e.word.casefold()}")
        for e in entries
        for q in e.quotations
    ]
    return records, {"articles": len(entries)}


# ------------------------------------------------------------------------------- smaller glossaries

_CATEGORY = re.compile(r"^(?:<[^>]*>\s*)+")  # FOLDOC's "<hardware>" subject tags
_JARGON_POS = re.compile(r"^(?:(?:n|v|vt|vi|adj|adv|interj|pref|suff|excl|prep|conj|pl)\.\s*,?\s*)+")
_LAST_EDIT = re.compile(r"\(\d{4}-\d{2}-\d{2}\)")
_DEVIL = re.compile(r"^([^,\n]+),\s*((?:[a-z]{1,5}\.\s*)+)\s*(.*)$", re.S)


def glossary_definition(article: str) -> tuple[str, str] | None:
    """(term, first paragraph of the definition) of a FOLDOC, Jargon File or VERA article.

    The first line is the term; further lines up to the first blank one without indentation are
    aliases; the first indented paragraph is the definition, without subject tags (``<hardware>``),
    parts of speech (``n.``) or a leading sense number.
    """
    lines = article.splitlines()
    if not lines or not lines[0].strip():
        return None
    term = _squash(lines[0])
    paragraphs: list[list[str]] = [[]]
    for line in lines[1:]:
        if not line.strip():
            paragraphs.append([])
        elif line[:1].isspace():
            paragraphs[-1].append(line)
    for para in paragraphs:
        text = _squash(" ".join(para))
        text = _JARGON_POS.sub("", _CATEGORY.sub("", text)).strip()
        text = re.sub(r"^\d+\.\s+", "", text)
        text = _squash(_LAST_EDIT.sub("", _BRACES.sub(r"\1", text.replace("{ ", "{"))))
        if len(text.split()) >= 2:
            return term, _first_chunk(text)
    return None


def devil_definition(article: str) -> tuple[str, str] | None:
    """(word, definition) of The Devil's Dictionary: ``ABNORMAL, adj.  Not conforming to standard. …``."""
    m = _DEVIL.match(article.strip())
    if not m:
        return None
    text = _squash(_BRACES.sub(r"\1", m.group(3)))
    return (m.group(1).strip().capitalize(), _first_chunk(text)) if len(text.split()) >= 2 else None


GLOSSARIES = {  # Debian package -> (database name, parser)
    "dict-foldoc": ("foldoc", glossary_definition),
    "dict-jargon": ("jargon", glossary_definition),
    "dict-devil": ("devil", devil_definition),
    "dict-vera": ("vera", glossary_definition),
}


def glossaries(sources: dict[str, Source]) -> tuple[list[Record], dict[str, int]]:
    """term → definition from every glossary in ``sources``; grouped by term."""
    records: list[Record] = []
    stats: dict[str, int] = {}
    for name, (db, parse) in GLOSSARIES.items():
        src = sources[name]
        articles = read_dictd(src.path(f"{DICTD_DIR}/{db}.index"), src.path(f"{DICTD_DIR}/{db}.dict.dz"))
        pairs = [p for p in (parse(a) for _, a in articles) if p is not None]
        stats[f"articles_{db}"] = len(articles)
        stats[f"pairs_{db}"] = len(pairs)
        records.extend(Record.of({"query": t, "positive": d}, group=f"{db}:{t.casefold()}") for t, d in pairs)
    return records, stats
