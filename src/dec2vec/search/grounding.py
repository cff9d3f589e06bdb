"""Grounding: what an answer may say, judged against the retrieved passages.

A 135M-parameter LM given the right passage still writes "William Shakespeare" for the author of
Pride and Prejudice, so nothing it writes is shown unchecked. Three cheap, model-free checks:

- **Retrieval strength.** A top hit's cosine means little alone (the untrained echo model scores
  a typical chunk near 0.6, MiniLM near 0.0), so it is read against the query's cosine with chunks
  sampled across the index, the *background* b: ``relevance = (top - mean(b)) / (1 - mean(b))``,
  the share of the way from "typical chunk" to "identical" that the top hit covers.
- **Support of a generated sentence.** Its content words that are not already in the question
  (what it claims) must be found in one passage that is about the question: most of them, and
  every name and number exactly.
- **Extractive choice.** Passage sentences that share a content word with the question, scored
  by the relevance of the sentence's own embedding plus half the share of the question's content
  words it contains.

Words are compared loosely (lowercase, accents and a plural ``s`` dropped, the first six letters),
so "whales" meets "whale" and "composer" meets "composed".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

SUPPORT = 0.75  # share of a generated sentence's new content words one passage must contain
LEXICAL_WEIGHT = 0.5  # extractive score: relevance + this x share of the question's words in the sentence
STEM = 6  # letters of a word compared

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we were
    what when where which while who whom whose why will with would you your yours yourself yourselves one called
    known name named many much may might must shall upon within without among via per well""".split()
)
META_WORDS = frozenset(
    """answer answers question questions source sources passage passages text information provided based according
    know cite cited context given mention mentioned mentions say says said sure""".split()
)
_WORD = re.compile(r"\w+(?:[.,'’]\w+)*")
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,–-]\s*\d+)*\]")
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
_PREAMBLE = re.compile(r"^(?:the\s+)?answer(?:\s+to\s+(?:this|your|the)\s+question)?(?:\s+is)?\s*:\s*", re.IGNORECASE)
_REFERRING = frozenset("he she it they his her its their this these those".split())
_ABBREVIATIONS = frozenset("mr mrs ms dr st jr sr vs etc e.g i.e no fig ca c approx inc ltd co".split())


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c))


def _key(word: str) -> str:
    """A word as compared: numbers without thousands separators, words without plural ``s``, cut to six letters."""
    w = _fold(word)
    for suffix in ("'s", "’s"):
        w = w.removesuffix(suffix)
    if any(c.isdigit() for c in w):
        return w.replace(",", "")
    w = w.replace(".", "").replace("'", "").replace("’", "")
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w[:STEM]


def content_words(text: str) -> set[str]:
    """The keys of ``text``'s words that carry content: no stopwords, no words about questions and sources."""
    out = set()
    for m in _WORD.finditer(strip_citations(text)):
        folded = _fold(m.group())
        if folded in STOPWORDS or folded in META_WORDS or (len(folded) < 2 and not folded.isdigit()):
            continue
        out.add(_key(m.group()))
    return out


def tidy(generated: str) -> str:
    """A generated answer without citation marks and the small model's preamble ("The answer to this
    question is: (Jane Austen)" becomes "Jane Austen")."""
    text = _PREAMBLE.sub("", strip_citations(generated).strip())
    if text.startswith("(") and text.endswith(")") and "(" not in text[1:]:
        text = text[1:-1]
    return text.strip()


def strip_citations(text: str) -> str:
    """``text`` without citation marks like ``[1]`` or ``[1, 2]``."""
    return _CITATION.sub("", text)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: lines, cut after ``.!?`` before whitespace (not after an initial or a short
    abbreviation, nor before a lowercase word); a fragment under three words joins its neighbour in the line."""
    out: list[str] = []
    for line in text.splitlines():
        pieces: list[str] = []
        start = 0
        for m in _BOUNDARY.finditer(line):
            before = line[start : m.start()].split()
            last = _fold(before[-1]) if before else ""
            rest = line[m.end() :].lstrip()
            if (len(last) == 1 and last.isalpha()) or last in _ABBREVIATIONS or (rest and rest[0].islower()):
                continue
            pieces.append(line[start : m.end()].strip())
            start = m.end()
        pieces.append(line[start:].strip())
        merged: list[str] = []
        for piece in filter(None, pieces):
            if merged and (len(piece.split()) < 3 or len(merged[-1].split()) < 3):
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                merged.append(piece)
        out += merged
    return out


def refers_back(sentence: str) -> bool:
    """Whether a sentence leans on the one before it: a pronoun among its first eight words ("She was the first
    woman in space" names nobody)."""
    return any(_fold(w) in _REFERRING for w in _WORD.findall(sentence)[:8])


def relevance(score: float | np.ndarray, background: np.ndarray) -> float | np.ndarray:
    """How far ``score`` is from the background's mean toward 1 (0 = a typical chunk, 1 = the same text)."""
    mean = float(np.mean(background)) if len(background) else 0.0
    return (np.asarray(score) - mean) / max(1.0 - mean, 1e-6)


def names_and_numbers(text: str) -> set[str]:
    """Keys of the words a claim must not get wrong: capitalised words inside a sentence, and numbers."""
    out = set()
    for sentence in split_sentences(strip_citations(text)):
        for j, m in enumerate(_WORD.finditer(sentence)):
            word = m.group()
            if any(c.isdigit() for c in word) or (j > 0 and word[0].isupper() and _fold(word) not in STOPWORDS):
                out.add(_key(word))
    return out


@dataclass(frozen=True)
class Support:
    """Which passage supports a claim, and how much of the claim's content it contains."""

    passage: int  # 0-based index into the passages
    share: float
    claimed: frozenset[str]  # the claim's content words not in the question


def support(claim: str, question: str, passages: list[str]) -> Support | None:
    """The passage that supports ``claim`` best, or None when none does (or it claims nothing new).

    A passage supports a claim when it holds at least 75% of the claim's content words that are not
    in the question, every name and number among them, and at least half of the question's own
    content words (so a true sentence about another topic, "Romeo and Juliet is a tragedy" for
    "Who wrote Pride and Prejudice?", is not taken for an answer). A claim made only of the
    question's words answers nothing.
    """
    asked = content_words(question)
    claimed = content_words(claim) - asked
    if not claimed:
        return None
    exact = names_and_numbers(claim) & claimed
    topic = (len(asked) + 1) // 2
    best: Support | None = None
    for i, passage in enumerate(passages):
        words = content_words(passage)
        share = len(claimed & words) / len(claimed)
        if share < SUPPORT or not exact <= words or len(asked & words) < topic:
            continue
        if best is None or share > best.share:
            best = Support(i, share, frozenset(claimed))
    return best


def supported_prefix(generated: str, question: str, passages: list[str]) -> list[tuple[str, Support]]:
    """The generated sentences up to the first unsupported one, each with its support.

    A last sentence cut off by the token limit (no closing punctuation) is dropped when an earlier
    one stands; the first unsupported sentence ends the answer, since what follows builds on it.
    """
    sentences = split_sentences(tidy(generated))
    if len(sentences) > 1 and not sentences[-1].rstrip("\"'”’)]").endswith((".", "!", "?")):
        sentences = sentences[:-1]
    kept: list[tuple[str, Support]] = []
    for s in sentences:
        found = support(s, question, passages)
        if found is None:
            break
        kept.append((s, found))
    return kept


def lexical_overlap(question: str, sentences: list[str]) -> np.ndarray:
    """The share of the question's content words each sentence contains: (n,)."""
    asked = content_words(question)
    if not asked:
        return np.zeros(len(sentences))
    return np.array([len(asked & content_words(s)) / len(asked) for s in sentences])
