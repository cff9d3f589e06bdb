"""Passage-level pairs: a heading → the section it heads, 60–400 words (about 80–520 tokens).

Users embed chunks of 200–512 tokens, while the other pair corpora are a sentence or a short
paragraph a side. Two sources give headings written by people for exactly the text below them:

- **Man page sections** (Debian ``manpages``, ``manpages-dev``): every ``.SH``/``.SS`` section but
  NAME, SYNOPSIS and the bibliographic ones, as ``"<page>(<section>): <heading>"`` → the section's
  text (paragraphs joined, font macros resolved by :func:`.manpages.roff_text`). The NAME → first
  paragraph pairs are another corpus; both group a page by its NAME line, so a page is in the same
  split in both.
- **Matthew Henry's chapter outlines** (Debian ``sword-comm-mhcc``): each chapter opens with an
  outline, ``The first sabbath.(1-3) Particulars about the creation.(4-7) …``; each item → the
  World English Bible verses it names (``sword-text-web``). Grouped by book and chapter like every
  Bible corpus, so a chapter is in one split everywhere.

A section longer than ``MAX_WORDS`` keeps its first ``MAX_WORDS`` words, cut at a sentence break.
"""

from __future__ import annotations

import gzip
import re

from .bible import Ref, clean_osis, cleaned, read_module
from .commentary import read_commentary
from .fetch import Source
from .manpages import _BREAK, _FONT_MACRO, MAN_GLOB, roff_text
from .records import Record
from .text import chunk_words

MIN_WORDS, MAX_WORDS = 60, 400
SKIP_SECTIONS = {"NAME", "SYNOPSIS", "SEE ALSO", "COLOPHON", "AUTHOR", "AUTHORS", "COPYRIGHT", "REPORTING BUGS",
                 "HISTORY", "STANDARDS", "CONFORMING TO", "VERSIONS", "LIBRARY", "ATTRIBUTES"}  # fmt: skip

_TH = re.compile(r'^\.TH\s+"?([^"\s]+)"?\s+"?([^"\s]+)"?')
_OUTLINE_ITEM = re.compile(r"([^()]+?)\s*\((\d+)(?:\s*[-–]\s*(\d+))?\)")
_CHAPTER = re.compile(r'<chapter\b[^>]*\bsID="([^".]+)\.(\d+)"[^>]*/>')
_FIRST_HEADING = re.compile(r'<hi type="bold">\s*Verses?\s+\d')


def _fit(text: str) -> str | None:
    if len(text.split()) < MIN_WORDS:
        return None
    return chunk_words(text, MAX_WORDS)[0]


def man_sections(source_text: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    """(NAME line, ``page(section)``, [(heading, text)]) of a man page's roff source, or None."""
    title = ""
    name: list[str] = []
    out: list[tuple[str, list[str]]] = []
    section = None
    for line in source_text.splitlines():
        if line.startswith(".so "):
            return None
        if line.startswith(('.\\"', "'\\\"")):
            continue
        if m := _TH.match(line):
            title = f"{m.group(1).lower()}({m.group(2)})"
            continue
        if line.startswith((".SH", ".SS", ".Sh", ".Ss")):
            heading = " ".join(roff_text(line[3:].strip().strip('"')).split())
            top = line[1:3] in ("SH", "Sh")
            section = heading.upper() if top else section
            if section == "NAME":
                continue
            # a top-level heading is a standard name in capitals (RETURN VALUE); a subsection's is kept as written
            out.append((heading.capitalize() if top and heading.isupper() else heading, []))
            continue
        if section == "NAME":
            if not line.startswith(".") or _FONT_MACRO.match(line):
                name.append(roff_text(line))
            continue
        if not out or (line.startswith(".") and not _FONT_MACRO.match(line)) or _BREAK.match(line):
            continue
        out[-1][1].append(roff_text(line))
    name_line = " ".join(" ".join(name).split())
    if not name_line or not title:
        return None
    sections = [(h, " ".join(" ".join(body).split())) for h, body in out if h.upper() not in SKIP_SECTIONS]
    return name_line, title, sections


def man_section_pairs(sources: dict[str, Source]) -> tuple[list[Record], dict[str, int]]:
    records: list[Record] = []
    stats: dict[str, int] = {}
    for name, src in sources.items():
        pages = sorted(src.root.glob(MAN_GLOB))
        n = 0
        for p in pages:
            rel = str(p.relative_to(src.root))
            parsed = man_sections(gzip.decompress(src.path(rel).read_bytes()).decode("utf-8", errors="replace"))
            if parsed is None:
                continue
            name_line, title, sections = parsed
            for heading, text in sections:
                passage = _fit(text)
                if passage:
                    n += 1
                    query = f"{title}: {heading}"
                    records.append(Record.of({"query": query, "positive": passage}, group=f"man:{name_line}"))
        stats[f"sections_{name}"] = n
    return records, stats


def outlines(osis: str) -> list[tuple[str, int, list[tuple[str, int, int]]]]:
    """(book, chapter, [(outline item, first verse, last verse)]) of every chapter whose commentary
    opens with an outline (the text between the chapter mark and its first ``Verse(s)`` heading)."""
    marks = list(_CHAPTER.finditer(osis))
    out = []
    for i, m in enumerate(marks):
        stop = marks[i + 1].start() if i + 1 < len(marks) else len(osis)
        seg = osis[m.end() : stop]
        h = _FIRST_HEADING.search(seg)
        intro = clean_osis(seg[: h.start()] if h else "")
        items = [
            (" ".join(t.split()).strip(" ,;"), int(a), int(b or a))
            for t, a, b in _OUTLINE_ITEM.findall(intro)
            if t.strip(" ,;.")
        ]
        if items:
            out.append((m.group(1), int(m.group(2)), items))
    return out


def outline_passages(
    chapters: list[tuple[str, int, list[tuple[str, int, int]]]], verses: dict[Ref, str]
) -> tuple[list[Record], int]:
    """Outline item → the verses it names; items whose passage is short (< ``MIN_WORDS``) or missing are counted."""
    records: list[Record] = []
    short = 0
    for book, chapter, items in chapters:
        for heading, first, last in items:
            text = " ".join(verses.get((book, chapter, v), "") for v in range(first, last + 1)).strip()
            passage = _fit(text) if last >= first else None
            if passage is None:
                short += 1
                continue
            records.append(Record.of({"query": heading, "positive": passage}, group=f"{book} {chapter}"))
    return records, short


def mhcc_outlines(commentary: Source, web: Source) -> tuple[list[Record], dict[str, int]]:
    chapters = outlines(read_commentary(commentary))
    records, short = outline_passages(chapters, cleaned(read_module(web)))
    return records, {
        "chapters_with_outline": len(chapters),
        "outline_items": sum(len(c[2]) for c in chapters),
        "dropped_short": short,
    }
