"""The result cache of ``dec2vec eval``: one JSON file per (model, task, settings) key.

Keys are hashes of everything a result depends on (the model's weights digest, the task file's
sha256, the settings, mteb's version and how scores are computed here), so a cached result is
reused only where it would be computed again unchanged: an interrupted run resumes where it
stopped, and the baselines every report carries are computed once per machine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..foundations.files import write_atomic
from ..models import cache_home


class ResultCache:
    """One JSON file per key under ``folder``; written atomically, a damaged file counts as missing."""

    def __init__(self, folder: Path | None, reuse: bool = True) -> None:
        self.folder = folder or cache_home() / "eval-results"
        self.reuse = reuse  # False: recompute everything; new results still replace the cached ones

    @staticmethod
    def key(**parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.folder / f"{key}.json"
        if not self.reuse or not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        write_atomic(self.folder / f"{key}.json", json.dumps(value, default=float) + "\n")
