"""Data sets reserved for a hidden check: never in training, the evaluation suite or the selection split.

WordSim-353, SimLex-999 and the Clough & Stevenson plagiarism corpus are kept back so that a later,
hidden hold-out measures the shipped model on data nothing here was tuned to. gensim's test data
ships the first two (``test/test_data/wordsim353.tsv``, ``simlex999.txt``); this module reads their
word pairs so that the leakage filter drops any training record, selection pair or evaluation pair
made of both words of a reserved pair. No installed package ships the plagiarism corpus; no source
may read a file whose name matches :data:`RESERVED_FILE_PATTERNS` (a test checks every registered
source and evaluation task against them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from .fetch import pypi_root
from .text import normalise

log = logging.getLogger(__name__)

RESERVED_SETS = ("WordSim-353", "SimLex-999", "Clough & Stevenson plagiarism corpus")
GENSIM_PAIR_FILES = ("test/test_data/wordsim353.tsv", "test/test_data/simlex999.txt")
RESERVED_FILE_PATTERNS = ("wordsim", "ws353", "simlex", "plagiarism", "clough")


def is_reserved_file(path: str) -> bool:
    low = path.lower()
    return any(p in low for p in RESERVED_FILE_PATTERNS)


def read_pairs(path: Path) -> Iterator[tuple[str, str]]:
    """(word 1, word 2) of a tab-separated pair file; ``#`` lines are comments."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) >= 2:
            yield parts[0], parts[1]


def pair_key(a: str, b: str) -> frozenset[str]:
    """An unordered pair of normalised texts (a pair of one repeated word is a one-element set)."""
    return frozenset((normalise(a), normalise(b)))


def reserved_pairs() -> set[frozenset[str]]:
    """Every reserved word pair that is installed (gensim's copies); empty, with a warning, without gensim."""
    try:
        root = pypi_root("gensim", "gensim==4.4.0")
    except Exception:  # noqa: BLE001 - any failure to locate means: nothing to exclude from here
        log.warning("gensim is not installed: the reserved WordSim-353/SimLex-999 pairs cannot be excluded")
        return set()
    out: set[frozenset[str]] = set()
    for rel in GENSIM_PAIR_FILES:
        p = root / rel
        if p.is_file():
            out.update(pair_key(a, b) for a, b in read_pairs(p))
    return out
