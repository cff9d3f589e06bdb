"""Unlabelled text from the labelled corpora: every distinct text, for distillation and SimCSE.

Distillation needs many varied texts to embed with the teacher, and SimCSE only single sentences;
the pair corpora hold both sides of each pair, so their texts (plus the plain-text corpora) make a
broad unlabelled set without another source. Each corpus contributes at most ``PER_CORPUS`` texts,
so the 200k GCIDE definitions do not drown the 2k ChatterBot answers; which ones is decided by the
sha256 of the text (content, not order: adding a source does not reshuffle the others).

A text keeps the split of the record it came from: if any record holding it is in a corpus's
validation split, the text is in ``text-mix``'s validation split too, so a model distilled on
``text-mix`` never saw the texts that validate the pair corpora.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from .records import Record, in_valid

MIN_WORDS = 5  # headwords and one-word replies carry little for distillation or SimCSE
PER_CORPUS = 20_000


def _rank(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def text_mix(
    corpora: Sequence[tuple[str, Callable[[], tuple[list[Record], dict[str, int]]]]],
    min_words: int = MIN_WORDS,
    per_corpus: int = PER_CORPUS,
) -> tuple[list[Record], dict[str, int]]:
    """``{"text"}`` records from the texts of each (name, builder) pair; stats count texts per corpus."""
    groups: dict[str, str] = {}  # text -> the group whose split it takes
    stats: dict[str, int] = {}
    for name, make in corpora:
        records, _ = make()
        own: dict[str, str] = {}
        for r in records:
            for t in r.texts:
                if len(t.split()) < min_words:
                    continue
                if t not in own or (in_valid(r.group) and not in_valid(own[t])):
                    own[t] = r.group
        kept = sorted(own, key=_rank)[:per_corpus]
        stats[f"texts_{name}"] = len(kept)
        for t in kept:
            if t not in groups or (in_valid(own[t]) and not in_valid(groups[t])):
                groups[t] = own[t]
    return [Record.of({"text": t}, group=g) for t, g in groups.items()], stats
