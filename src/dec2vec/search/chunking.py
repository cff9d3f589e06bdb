"""Cut a document into overlapping chunks of at most ``size`` tokens (or characters).

Chunks are measured in the model's own tokens by default, because that is what bounds the
embedder's input (``max_length``) and its cost. A cut prefers, within the last half of a full
window, the end of a sentence (``.!?`` before whitespace, or a line break), then any whitespace,
and only then falls back to a hard cut at ``size``; the next chunk starts ``overlap`` units
earlier, moved forward to the next word start when there is one, so chunks never open mid-word
when they need not. Every unit of the text belongs to at least one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InputError

Unit = Literal["tokens", "chars"]
SENTENCE_END = ".!?"


@dataclass(frozen=True)
class ChunkSpec:
    """How documents are cut; part of every document's hash, so changing it re-chunks the index."""

    size: int = 256
    overlap: int = 32
    unit: Unit = "tokens"

    def __post_init__(self) -> None:
        if self.unit not in ("tokens", "chars"):
            raise InputError(f"chunk unit must be 'tokens' or 'chars', got {self.unit!r}")
        if self.size < 1:
            raise InputError(f"chunk size must be at least 1, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise InputError(f"chunk overlap must be in [0, size), got {self.overlap} with size {self.size}")

    def key(self) -> str:
        return f"{self.unit}:{self.size}:{self.overlap}"

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "overlap": self.overlap, "unit": self.unit}


@dataclass(frozen=True)
class Chunk:
    text: str  # the document's characters [start, end), stripped of surrounding whitespace
    start: int
    end: int
    first_unit: int  # units [first_unit, last_unit) of the document (tokens or characters)
    last_unit: int


def unit_spans(text: str, unit: Unit, tokenizer: Any = None) -> list[tuple[int, int]]:
    """Character span of every unit of ``text``: each token (no special tokens) or each character."""
    if unit == "chars":
        return [(i, i + 1) for i in range(len(text))]
    if tokenizer is None:
        raise InputError("chunking by tokens needs the model's tokenizer")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [(int(a), int(b)) for a, b in enc["offset_mapping"]]


def _is_space_at(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isspace()


def _boundary(text: str, spans: list[tuple[int, int]], p: int) -> int:
    """How good a cut between unit p-1 and unit p is: 2 sentence end, 1 whitespace, 0 inside a word."""
    a, b = spans[p - 1][1], spans[p][0]
    gap_space = any(c.isspace() for c in text[a:b]) or _is_space_at(text, a - 1) or _is_space_at(text, b)
    if "\n" in text[max(a - 1, 0) : b + 1]:
        return 2
    if gap_space and a >= 1 and text[a - 1] in SENTENCE_END:
        return 2
    return 1 if gap_space else 0


def _cut(text: str, spans: list[tuple[int, int]], start: int, size: int) -> int:
    """End (exclusive) of the chunk opening at ``start``: the best boundary in the window's last half."""
    hard = start + size
    lowest = start + max(1, size // 2)
    for want in (2, 1):
        for p in range(hard, lowest - 1, -1):
            if _boundary(text, spans, p) >= want:
                return p
    return hard


def _next_start(text: str, spans: list[tuple[int, int]], start: int, end: int, overlap: int) -> int:
    """Where the next chunk opens: ``overlap`` units before ``end``, moved to a word start if one is near."""
    first = max(end - overlap, start + 1)
    for p in range(first, end):
        if _boundary(text, spans, p) >= 1:
            return p
    return first


def chunk_text(text: str, spec: ChunkSpec, tokenizer: Any = None) -> list[Chunk]:
    """The chunks of ``text`` in order; whitespace-only stretches yield none (an empty text yields [])."""
    spans = unit_spans(text, spec.unit, tokenizer)
    n = len(spans)
    chunks: list[Chunk] = []
    start = 0
    while start < n:
        end = n if n - start <= spec.size else _cut(text, spans, start, spec.size)
        a, b = spans[start][0], spans[end - 1][1]
        piece = text[a:b]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            chunks.append(Chunk(stripped, a + lead, a + lead + len(stripped), start, end))
        if end >= n:
            break
        start = _next_start(text, spans, start, end, spec.overlap)
    return chunks
