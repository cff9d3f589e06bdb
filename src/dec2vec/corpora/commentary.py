"""Passage → commentary pairs: Matthew Henry's Concise Commentary (Debian ``sword-comm-mhcc``, public domain).

A commentary section explains a few verses in other words, so (KJV passage, section) pairs teach a
looser relevance than translations do. The module is a SWORD ``zCom4`` module, which pysword does
not open; its files are read here directly. ``ot.bzs``/``nt.bzs`` list the compressed blocks (three
little-endian uint32 each: offset, size, uncompressed size) of ``ot.bzz``/``nt.bzz`` (zlib); the
blocks, decompressed and joined, are the module's OSIS text in canonical order. That text carries
the chapter milestones (``<chapter osisID="Gen.1" sID="Gen.1"/>``) and a bold heading before every
section (``<hi type="bold">Verses 3-5</hi>``), which is all the pairing needs: the verse index
(``.bzv``) is not read.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

from ..errors import SourceError
from .bible import Ref, clean_osis, cleaned, read_module
from .fetch import Source
from .records import Record
from .text import chunk_words

MODULE_DIR = "usr/share/sword/modules/comments/zcom/mhcc"
MAX_WORDS = 200  # a long passage or section keeps its first 200 words, cut at a sentence break

_CHAPTER = re.compile(r'<chapter\b[^>]*\bsID="([^".]+)\.(\d+)"[^>]*/>')
_HEADING = re.compile(r'<hi type="bold">\s*Verses?\s+(\d+)(?:\s*[-–]\s*(\d+))?\s*</hi>')


def read_blocks(bzs: Path, bzz: Path) -> str:
    """The decompressed, joined text of a zText/zCom block file pair."""
    index, data = bzs.read_bytes(), bzz.read_bytes()
    if len(index) % 12:
        raise SourceError(f"{bzs}: size {len(index)} is not a multiple of 12 (offset, size, uncompressed size)")
    parts = []
    for i in range(0, len(index), 12):
        offset, size, _ = struct.unpack("<III", index[i : i + 12])
        if size:
            parts.append(zlib.decompress(data[offset : offset + size]).decode("utf-8", errors="replace"))
    return "".join(parts)


def sections(osis: str) -> list[tuple[str, int, int, int, str]]:
    """(book, chapter, first verse, last verse, commentary text) for every ``Verse(s) …`` heading."""
    marks: list[tuple[int, int, str, object]] = []
    for m in _CHAPTER.finditer(osis):
        marks.append((m.start(), m.end(), "chapter", (m.group(1), int(m.group(2)))))
    for m in _HEADING.finditer(osis):
        first = int(m.group(1))
        marks.append((m.start(), m.end(), "heading", (first, int(m.group(2) or first))))
    marks.sort(key=lambda x: x[0])
    out: list[tuple[str, int, int, int, str]] = []
    where: tuple[str, int] | None = None
    for i, (_, end, kind, value) in enumerate(marks):
        if kind == "chapter":
            where = value  # type: ignore[assignment]
            continue
        if where is None:
            continue
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(osis)
        first, last = value  # type: ignore[misc]
        text = clean_osis(osis[end:stop])
        if text:
            out.append((where[0], where[1], first, last, text))
    return out


def _fit(text: str) -> str:
    chunks = chunk_words(text, MAX_WORDS)
    return chunks[0] if chunks else ""


def passage_pairs(secs: list[tuple[str, int, int, int, str]], verses: dict[Ref, str]) -> tuple[list[Record], int]:
    """KJV passage → commentary section; sections whose verses are not in the Bible are counted and skipped."""
    records: list[Record] = []
    missing = 0
    for book, chapter, first, last, text in secs:
        passage = " ".join(verses.get((book, chapter, v), "") for v in range(first, last + 1)).strip()
        if not passage or last < first:
            missing += 1
            continue
        records.append(Record.of({"query": _fit(passage), "positive": _fit(text)}, group=f"{book} {chapter}"))
    return records, missing


def read_commentary(commentary: Source) -> str:
    """The whole module's OSIS text, Old Testament then New."""
    return "".join(
        read_blocks(commentary.path(f"{MODULE_DIR}/{t}.bzs"), commentary.path(f"{MODULE_DIR}/{t}.bzz"))
        for t in ("ot", "nt")
    )


def mhcc(commentary: Source, kjv: Source) -> tuple[list[Record], dict[str, int]]:
    """Grouped by book and chapter, like the Bible pairs, so a chapter is in one split in every Bible corpus."""
    osis = read_commentary(commentary)
    secs = sections(osis)
    records, missing = passage_pairs(secs, cleaned(read_module(kjv)))
    return records, {"sections": len(secs), "dropped_no_passage": missing}
