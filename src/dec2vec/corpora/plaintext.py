"""Plain text for unsupervised objectives: Jane Austen's six novels and gensim's small Wikipedia dump.

Masked or next-token objectives on in-domain prose (LLM2Vec's MNTP, SimCSE-style dropout pairs) need
running text, not pairs. Each record is one paragraph, or a chunk of at most ``MAX_WORDS`` words of a
longer one cut at sentence breaks, so every record fits a short context window.

* Austen: Debian ``r-cran-janeaustenr`` ships the novels as R data (one character vector of
  lines per novel) in R's lazy-load database, read here with the ``rdata`` package.
* Wikipedia: gensim's test data holds a 206-page slice of an English Wikipedia dump (XML, bz2).
  It is parsed with the standard library, and wiki markup is stripped with the regexes below,
  not gensim's ``filter_wiki`` (importing gensim pulls in scipy and compiled extensions).
"""

from __future__ import annotations

import bz2
import html
import lzma
import re
import warnings
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import SourceError
from .fetch import Source
from .records import Record
from .text import chunk_words

MAX_WORDS = 200  # a record longer than this is cut at sentence breaks
AUSTEN_MIN_WORDS = 5  # drops chapter headings, signatures and one-line replies ('"Bingley."')
WIKI_MIN_WORDS = 8  # drops captions, list remnants and lines emptied by markup removal

AUSTEN_DATA = "usr/lib/R/site-library/janeaustenr/data"
WIKI_FILE = "test/test_data/enwiki-latest-pages-articles*-shortened.bz2"  # under the gensim package

# ------------------------------------------------------------------------------------------- Austen


def read_lazyload_db(rdx: Path, rdb: Path) -> dict[str, object]:
    """Every object of an R lazy-load database (``Rdata.rdx`` + ``Rdata.rdb``), converted by ``rdata``.

    The ``.rdx`` index is an ordinary RDS file mapping each name to an (offset, length) in the
    ``.rdb``; there each object is a 4-byte big-endian length and a compressed serialised object.
    """
    try:
        import rdata
    except ImportError:
        raise SourceError("reading the Austen novels (R data) needs rdata: pip install 'dec2vec[data]'") from None

    def parse(data: bytes | Path) -> object:
        with warnings.catch_warnings():  # rdata warns that a bare stream has no file-type header
            warnings.simplefilter("ignore")
            parsed = rdata.parser.parse_file(data) if isinstance(data, Path) else rdata.parser.parse_data(data)
            return rdata.conversion.convert(parsed)

    index = parse(rdx)
    if not isinstance(index, dict) or "variables" not in index:
        raise SourceError(f"{rdx}: not an R lazy-load index")
    raw = rdb.read_bytes()
    out: dict[str, object] = {}
    for name, (offset, length) in index["variables"].items():
        blob = raw[int(offset) : int(offset) + int(length)]
        out[str(name)] = parse(_decompress_rdb(blob))
    return out


def _decompress_rdb(blob: bytes) -> bytes:
    """R's lazy-load compression: zlib after the length, or (type 2/3) a one-byte method tag first."""
    body = blob[4:]
    tag = body[:1]
    if tag == b"Z":
        return zlib.decompress(body[1:])
    if tag == b"2":
        return bz2.decompress(body[1:])
    if tag == b"X":
        return lzma.decompress(body[1:])
    if tag == b"0":
        return body[1:]
    return zlib.decompress(body)


def paragraphs(lines: Iterable[str | None]) -> list[str]:
    """Blocks of consecutive non-empty lines joined into one string each (Project Gutenberg layout)."""
    out: list[str] = []
    block: list[str] = []
    for line in lines:
        line = (line or "").strip()
        if line:
            block.append(line)
        elif block:
            out.append(" ".join(block))
            block = []
    if block:
        out.append(" ".join(block))
    return out


_ITALICS = re.compile(r"_([^_]+)_")  # Gutenberg marks italics as _word_
_AUSTEN_HEADING = re.compile(r"^(?:chapter|volume|book)\s+(?:\d+|[ivxlc]+)\b", re.I)


def austen_chunks(lines: Iterable[str | None], min_words: int = AUSTEN_MIN_WORDS) -> list[str]:
    """Paragraphs of one novel, without headings (CHAPTER I, VOLUME II, THE END, all-capitals lines)."""
    out: list[str] = []
    for para in paragraphs(lines):
        para = _ITALICS.sub(r"\1", para).replace("_", "")
        if _AUSTEN_HEADING.match(para) or not any(c.islower() for c in para) or len(para.split()) < min_words:
            continue
        out.extend(chunk_words(para, MAX_WORDS))
    return out


def austen(source: Source) -> tuple[list[Record], dict[str, int]]:
    data = f"{AUSTEN_DATA}/Rdata"
    novels = read_lazyload_db(source.path(f"{data}.rdx"), source.path(f"{data}.rdb"))
    records: list[Record] = []
    stats: dict[str, int] = {}
    for name, lines in sorted(novels.items()):
        chunks = austen_chunks([None if x is None else str(x) for x in lines])  # type: ignore[attr-defined]
        stats[f"words_{name}"] = sum(len(str(x or "").split()) for x in lines)  # type: ignore[attr-defined]
        records.extend(Record.of({"text": c}, group=c) for c in chunks)
    return records, stats


# ---------------------------------------------------------------------------------------- Wikipedia


def iter_pages(path: Path) -> Iterator[tuple[str, str]]:
    """(title, wikitext) of every article of a MediaWiki XML dump: namespace 0, redirects left out."""
    with bz2.open(path, "rb") as f:
        for _, elem in ET.iterparse(f, events=("end",)):
            if elem.tag.rsplit("}", 1)[-1] != "page":
                continue
            fields = {child.tag.rsplit("}", 1)[-1]: child for child in elem}
            title = (fields["title"].text or "") if "title" in fields else ""
            ns = (fields["ns"].text or "0") if "ns" in fields else "0"
            text = ""
            if "revision" in fields:
                for child in fields["revision"]:
                    if child.tag.rsplit("}", 1)[-1] == "text":
                        text = child.text or ""
            if ns == "0" and "redirect" not in fields and not text.lstrip().upper().startswith("#REDIRECT"):
                yield title, text
            elem.clear()


# Markup removal, applied in this order (see strip_wikitext).
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref>", re.S | re.I)
_BLOCK_TAGS = re.compile(
    r"<(math|gallery|timeline|syntaxhighlight|source|score|imagemap|chem)\b[^>]*>.*?</\1>", re.S | re.I
)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")  # innermost {{…}} first, repeated until none is left
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)  # innermost {| … |} first
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")  # innermost [[…]] first, so captions' links go before their File:
_DROP_NAMESPACES = ("file:", "image:", "category:", "media:")
_EXTERNAL = re.compile(r"\[(?:https?:)?//[^\s\]]+\s*([^\]]*)\]")  # [http://x label] → label
_EMPHASIS = re.compile(r"'{2,}")
_HTML_TAG = re.compile(r"<[^>]+>")
_HEADING_LINE = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;]?\s*\)")  # "( )" left where a template stood
_SPACE_BEFORE = re.compile(r"\s+([,.;:!?)])")
_SKIP_SECTIONS = {
    "see also",
    "references",
    "external links",
    "further reading",
    "notes",
    "bibliography",
    "sources",
    "footnotes",
    "citations",
    "notes and references",
}


def _link_text(m: re.Match[str]) -> str:
    target, _, label = m.group(1).partition("|")
    if target.strip().lower().startswith(_DROP_NAMESPACES):
        return ""
    if label:
        return label.rsplit("|", 1)[-1]
    if ":" in target.strip(":"):  # interlanguage ([[de:…]]) and other namespaces without a label
        return ""
    return target


def _until_stable(pattern: re.Pattern[str], repl: str | object, text: str) -> str:
    while True:
        new = pattern.sub(repl, text)  # type: ignore[arg-type]
        if new == text:
            return text
        text = new


def strip_wikitext(text: str, min_words: int = WIKI_MIN_WORDS) -> list[str]:
    """Paragraphs of running text in an article's wikitext: templates, tables, references, files,
    lists, headings and the reference sections at the end are removed; links keep their label."""
    text = _COMMENT.sub("", text)
    text = _REF.sub("", text)
    text = _BLOCK_TAGS.sub("", text)
    text = _until_stable(_TEMPLATE, "", text)
    text = _until_stable(_TABLE, "", text)
    text = _until_stable(_LINK, _link_text, text)
    text = _EXTERNAL.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    text = _HTML_TAG.sub(" ", text)
    text = html.unescape(text).replace("\xa0", " ")
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        line = line.strip()
        heading = _HEADING_LINE.match(line)
        if heading:
            skipping = heading.group(2).strip().lower() in _SKIP_SECTIONS
            continue
        if skipping or not line or line[0] in "*#:;|!{}[]":  # lists, indents, table and markup remnants
            continue
        line = _SPACE_BEFORE.sub(r"\1", _EMPTY_BRACKETS.sub("", " ".join(line.split())))
        if len(line.split()) >= min_words:
            out.extend(chunk_words(line, MAX_WORDS))
    return out


def wiki(source: Source) -> tuple[list[Record], dict[str, int]]:
    matches = sorted(source.root.glob(WIKI_FILE))
    if not matches:
        raise SourceError(f"{source.name} {source.version}: no {WIKI_FILE} under {source.root}")
    path = source.path(str(matches[0].relative_to(source.root)))
    records: list[Record] = []
    pages = 0
    for title, wikitext in iter_pages(path):
        pages += 1
        records.extend(Record.of({"text": c}, group=c, title=title) for c in strip_wikitext(wikitext))
    return records, {"articles": pages}
