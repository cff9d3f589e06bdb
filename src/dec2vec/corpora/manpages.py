"""Manual pages (Debian ``manpages``, ``manpages-dev``): NAME line → first DESCRIPTION paragraph; and fortunes.

Man pages are roff source (``usr/share/man/man*/*.gz``). ``.SH NAME`` is followed by ``name \\- summary``;
``.SH DESCRIPTION`` by paragraphs separated by ``.PP``/``.P``/``.LP``/``.TP``/``.IP`` or blank lines.
Font escapes (``\\fB``), ``\\-`` and ``\\(em`` style characters are resolved, and font macros
(``.B``, ``.BR``, ``.IR`` …) keep their words. Pages that only include another (``.so``) are skipped.

Fortunes (Debian ``fortunes``, ``fortunes-min``): ``usr/share/games/fortunes/NAME`` files whose
items are separated by lines holding ``%``; they are plain text for unsupervised objectives.
"""

from __future__ import annotations

import gzip
import re

from .fetch import Source
from .records import Record
from .text import chunk_words

MAN_GLOB = "usr/share/man/man*/*.gz"
FORTUNE_DIR = "usr/share/games/fortunes"
FORTUNE_SKIP = {"ascii-art"}  # pictures, not text
FORTUNE_MIN_WORDS = 5
MAX_WORDS = 200

_CHARS = {"em": "—", "en": "–", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "bu": "•",
          "co": "©", "mu": "×", "ti": "~", "ha": "^", "rs": "\\", "hy": "-", "at": "@", "sh": "#", "Fo": "«",
          "Fc": "»", "<=": "≤", ">=": "≥", "!=": "≠", "->": "→", "ga": "`", "ul": "_", "dg": "†"}  # fmt: skip
_ESCAPE = re.compile(
    r"\\(?:f(?:\[[^\]]*\]|\(..|.)|\((..)|\[([^\]]*)\]|\*(?:\(..|\[[^\]]*\]|.)|s[-+]?\d|&|:|%|\^|\||c|-|e|\\| |~|0)"
)
_FONT_MACRO = re.compile(r"^\.(?:B|I|R|SM|SB|BR|BI|IB|IR|RB|RI)\s+(.*)$")
_BREAK = re.compile(r"^\.(?:PP|P|LP|TP|IP|HP|SS|SH|sp|br|in|RS|RE|TQ|nf|fi|EX|EE|TH|UR|UE|MT|ME)\b")


def _escape(m: re.Match[str]) -> str:
    s = m.group(0)
    if m.group(1) or m.group(2):
        return _CHARS.get(m.group(1) or m.group(2), "")
    return {"\\-": "-", "\\e": "\\", "\\\\": "\\", "\\ ": " ", "\\~": " ", "\\0": " "}.get(s, "")


def roff_text(line: str) -> str:
    """One roff line as text: font macros keep their arguments (quotes removed), escapes resolved."""
    if m := _FONT_MACRO.match(line):
        args = re.findall(r'"([^"]*)"|(\S+)', m.group(1))
        alternating = line[1:].split()[0] not in ("B", "I", "R", "SM", "SB")
        line = ("" if alternating else " ").join(a or b for a, b in args)
    return _ESCAPE.sub(_escape, line)


def man_pair(source_text: str) -> tuple[str, str] | None:
    """(NAME line, first DESCRIPTION paragraph) of a man page's roff source, or None."""
    section = None
    name: list[str] = []
    para: list[str] = []
    for line in source_text.splitlines():
        if line.startswith(('.\\"', "'\\\"", '.\\"')) or line.startswith(".so "):
            if line.startswith(".so "):
                return None
            continue
        if line.startswith((".SH", ".Sh")):
            if section == "DESCRIPTION" and para:
                break
            section = line[3:].strip().strip('"').upper()
            continue
        if section == "NAME":
            if not line.startswith(".") or _FONT_MACRO.match(line):
                name.append(roff_text(line))
        elif section == "DESCRIPTION":
            if _BREAK.match(line) or not line.strip():
                if para:
                    break
                continue
            if line.startswith(".") and not _FONT_MACRO.match(line):
                continue
            para.append(roff_text(line))
    title = " ".join(" ".join(name).split())
    text = " ".join(" ".join(para).split())
    if not title or len(text.split()) < 3:
        return None
    chunks = chunk_words(text, MAX_WORDS)
    return title, chunks[0]


def manpages(sources: dict[str, Source]) -> tuple[list[Record], dict[str, int]]:
    """NAME line → description, from every page of the given packages; grouped by the NAME line."""
    records: list[Record] = []
    stats: dict[str, int] = {}
    for name, src in sources.items():
        pages = sorted(src.root.glob(MAN_GLOB))
        pairs = 0
        for p in pages:
            rel = str(p.relative_to(src.root))
            text = gzip.decompress(src.path(rel).read_bytes()).decode("utf-8", errors="replace")
            pair = man_pair(text)
            if pair:
                pairs += 1
                records.append(Record.of({"query": pair[0], "positive": pair[1]}, group=f"man:{pair[0]}"))
        stats[f"pages_{name}"] = len(pages)
        stats[f"pairs_{name}"] = pairs
    return records, stats


# -------------------------------------------------------------------------------------------- fortunes


def fortune_items(text: str) -> list[str]:
    """The items of a fortune file (``%`` lines separate them), whitespace squashed."""
    items = re.split(r"(?m)^%\s*$", text)
    return [" ".join(i.split()) for i in items if i.strip()]


def fortunes(sources: dict[str, Source]) -> tuple[list[Record], dict[str, int]]:
    records: list[Record] = []
    stats: dict[str, int] = {}
    for name, src in sources.items():
        n = 0
        for p in sorted((src.root / FORTUNE_DIR).glob("*")):
            if p.suffix or not p.is_file() or p.name in FORTUNE_SKIP:  # .dat files are random-access indexes
                continue
            text = src.path(str(p.relative_to(src.root))).read_text(encoding="utf-8", errors="replace")
            for item in fortune_items(text):
                if len(item.split()) >= FORTUNE_MIN_WORDS and any(c.islower() for c in item):
                    n += 1
                    records.extend(Record.of({"text": c}, group=c) for c in chunk_words(item, MAX_WORDS))
        stats[f"items_{name}"] = n
    return records, stats
