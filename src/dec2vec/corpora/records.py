"""Records, and how they become files: dedup, the train/validation split, shuffling and atomic JSONL writes.

The validation split is chosen by a hash of each record's ``group`` (a piece of its content), not by
position or by a random draw, so a record keeps its split when sources are added, the seed changes or
the builder's order changes. Records that must not be separated share a group: every WordNet record
of one definition, every Bible verse of one chapter (neighbouring verses are each other's negatives).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..foundations.files import atomic_path, write_atomic
from ..models import sha256_file

VALID_FRACTION = 0.02


@dataclass(frozen=True)
class Record:
    """One output line (``data``) plus what the pipeline needs to know about it but does not write."""

    data: dict[str, object]  # exactly what goes into the JSONL line
    group: str  # hashed to choose the split; records with the same group stay together
    title: str | None = None  # the source page's title, for title-based leakage rules
    texts: tuple[str, ...] = field(default=())  # every text in ``data``, for the leakage filter

    @staticmethod
    def of(data: dict[str, object], group: str, title: str | None = None) -> Record:
        texts: list[str] = []
        for v in data.values():
            if isinstance(v, str):
                texts.append(v)
            elif isinstance(v, list):
                texts.extend(x for x in v if isinstance(x, str))
        return Record(data=data, group=group, title=title, texts=tuple(texts))

    @functools.cached_property
    def line(self) -> str:
        """The JSON line (computed once: dedup and writing both need it)."""
        return json.dumps(self.data, ensure_ascii=False)


def dedupe(records: Iterable[Record]) -> tuple[list[Record], int]:
    """Records with identical JSON kept once (first wins); returns them and how many were dropped."""
    seen: set[str] = set()
    out: list[Record] = []
    dropped = 0
    for r in records:
        key = r.line
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        out.append(r)
    return out, dropped


def in_valid(group: str, fraction: float = VALID_FRACTION) -> bool:
    """Whether a group falls in the validation split: its sha256, read as a number in [0, 1), is below ``fraction``."""
    h = int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:8], "big")
    return h / 2**64 < fraction


def split(records: Sequence[Record], fraction: float = VALID_FRACTION) -> tuple[list[Record], list[Record]]:
    """(train, valid) by the hash of each record's group."""
    train: list[Record] = []
    valid: list[Record] = []
    for r in records:
        (valid if in_valid(r.group, fraction) else train).append(r)
    return train, valid


def shuffled(records: Sequence[Record], seed: int, salt: str) -> list[Record]:
    """A seeded shuffle, so a streaming reader sees mixed content; ``salt`` gives each file its own order."""
    out = list(records)
    random.Random(f"{seed}:{salt}").shuffle(out)  # str seeds are hashed with sha512: stable across runs
    return out


def write_jsonl(path: Path, records: Iterable[Record]) -> dict[str, object]:
    """Write one JSON object per line (UTF-8) atomically; returns the manifest entry of the file."""
    n = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for r in records:
                f.write(r.line + "\n")
                n += 1
    return {"records": n, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def write_text(path: Path, text: str) -> None:
    """Write a small text file atomically (the manifest and the README)."""
    write_atomic(path, text)
