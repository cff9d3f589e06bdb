"""WordNet 3.0 definition pairs: word ↔ gloss and gloss ↔ example, from Debian ``wordnet-base``.

Definitions teach an embedder to map a short name onto a descriptive sentence and a sentence onto
its use in context, which plain paraphrase pairs do not cover. The data files are read directly
(the format is documented in WordNet's ``wndb(5WN)``), one synset per line::

    00002684 03 n 02 object 0 physical_object 0 039 @ 00001930 n 0000 ... | a tangible and visible
    entity; an entity that can cast a shadow; "it was full of rackets, balls and other objects"

offset, lexicographer file, part of speech, the word count in hex, (word, lex id) pairs, pointers,
then ``|`` and the gloss: definitions separated by ``;``, examples in double quotes, sometimes with
an attribution (``"..." - Shakespeare``) that belongs to neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .fetch import Source
from .records import Record

DATA_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
DATA_DIR = "usr/share/wordnet"

_EXAMPLE = re.compile(r'"([^"]*)"(\s*-+[^;"]*)?')  # a quoted example and its optional "- Author"
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")  # adjective position markers: big(a), afraid(p), elect(ip)


@dataclass(frozen=True)
class Synset:
    """One sense: its words, its definition (examples removed) and its example sentences."""

    offset: str
    pos: str
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]


def parse_line(line: str) -> Synset | None:
    """A synset from one data-file line, or None for the licence header (its lines start with two spaces)."""
    if line.startswith("  ") or not line.strip():
        return None
    head, sep, gloss = line.partition(" | ")
    if not sep:
        return None
    offset, _, pos, count, rest = head.split(" ", 4)
    n_words = int(count, 16)
    words = rest.split(" ", 2 * n_words)[: 2 * n_words : 2]  # (word, lex_id) pairs; the pointers are not needed
    lemmas = tuple(_ADJ_MARKER.sub("", w).replace("_", " ") for w in words)
    examples: tuple[str, ...] = ()
    if '"' in gloss:
        examples = tuple(e for e in (" ".join(m.group(1).split()) for m in _EXAMPLE.finditer(gloss)) if e)
        gloss = _EXAMPLE.sub("", gloss)
    definition = "; ".join(p for p in (" ".join(part.split()) for part in gloss.split(";")) if p)
    return Synset(offset=offset, pos=pos, lemmas=lemmas, definition=definition, examples=examples)


def read_synsets(paths: Iterable[Path]) -> Iterator[Synset]:
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                s = parse_line(line)
                if s is not None:
                    yield s


def word_gloss(synsets: Iterable[Synset]) -> list[Record]:
    """One pair per synset: its first word → its definition.

    Only the first word: the other synonyms would repeat the same definition as the positive of
    several queries, which in-batch negatives then count as false negatives.
    """
    return [
        Record.of({"query": s.lemmas[0], "positive": s.definition}, group=s.definition)
        for s in synsets
        if s.lemmas and s.definition
    ]


def gloss_example(synsets: Iterable[Synset]) -> list[Record]:
    """One pair per example sentence: the synset's definition → the example."""
    return [
        Record.of({"query": s.definition, "positive": ex}, group=s.definition)
        for s in synsets
        if s.definition
        for ex in s.examples
    ]


def synsets_from(source: Source) -> list[Synset]:
    """All synsets of the four data files, parsed once per build and shared by both WordNet corpora."""
    if "synsets" not in source.parsed:
        source.parsed["synsets"] = list(read_synsets(source.path(f"{DATA_DIR}/{name}") for name in DATA_FILES))
    return source.parsed["synsets"]  # type: ignore[return-value]


# ---- the taxonomy: lexicographer files, hypernyms and each word's most frequent sense (word similarity)


@dataclass(frozen=True)
class Node:
    """A synset's place in the taxonomy: its lexicographer file (e.g. 05 = noun.animal) and direct hypernyms."""

    offset: str
    pos: str
    lexfile: int
    lemmas: tuple[str, ...]
    hypernyms: tuple[str, ...]  # offsets of ``@`` (hypernym) and ``@i`` (instance hypernym) pointers


def parse_node(line: str) -> Node | None:
    """The taxonomy fields of one data-file line (see ``wndb(5WN)``), or None for the licence header."""
    if line.startswith("  ") or " | " not in line:
        return None
    fields = line.partition(" | ")[0].split()
    offset, lexfile, pos, n_words = fields[0], int(fields[1]), fields[2], int(fields[3], 16)
    words = fields[4 : 4 + 2 * n_words : 2]
    at = 4 + 2 * n_words
    n_ptr = int(fields[at])
    hyper = []
    for p in range(n_ptr):
        symbol, target = fields[at + 1 + 4 * p], fields[at + 2 + 4 * p]
        if symbol in ("@", "@i"):
            hyper.append(target)
    lemmas = tuple(_ADJ_MARKER.sub("", w).replace("_", " ") for w in words)
    return Node(offset, pos, lexfile, lemmas, tuple(hyper))


def read_nodes(path: Path) -> dict[str, Node]:
    with open(path, encoding="utf-8") as f:
        return {n.offset: n for n in (parse_node(line) for line in f) if n is not None}


def first_senses(path: Path) -> dict[str, tuple[str, int]]:
    """word -> (offset of its most frequent sense, how many of its senses are tagged in SemCor), from an
    ``index.POS`` file: ``lemma pos synset_cnt p_cnt [ptr…] sense_cnt tagsense_cnt offset…`` with the
    offsets in decreasing order of frequency."""
    out: dict[str, tuple[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split()
            p_cnt = int(fields[3])
            tagged = int(fields[5 + p_cnt])
            out[fields[0].replace("_", " ")] = (fields[6 + p_cnt], tagged)
    return out
