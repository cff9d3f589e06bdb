"""``Hit``: one search result, as the index returns it and ``ask`` cites it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, its cosine similarity to the query, and where it came from."""

    score: float
    text: str
    source: str  # path[:row]#chunk
    path: str
    row: int | None
    chunk: int
    metadata: dict[str, Any]
    id: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Hit:
        """A LanceDB search row (``Store.search``) as a hit."""
        return cls(
            score=1.0 - float(row["_distance"]),  # LanceDB's cosine distance is 1 - cosine similarity
            text=row["text"],
            source=row["source"],
            path=row["path"],
            row=row["row"],
            chunk=int(row["chunk"]),
            metadata=json.loads(row["metadata"]) if row["metadata"] else {},
            id=row["id"],
        )

    @property
    def title(self) -> str | None:
        t = self.metadata.get("title")
        return t if isinstance(t, str) else None

    @property
    def label(self) -> str:
        """How a prompt or an answer names the source: its title, else its file name."""
        return self.title or self.source.rsplit("/", 1)[-1]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
