"""Sentence splitting, chunking and normalisation shared by the plain-text corpora and the leakage filter.

The splitter is a plain regex, not a trained model: it over-splits at abbreviations ("Mr. Bennet"),
which is harmless here because the leakage filter applies the very same splitter to both sides, and
chunks only need breaks at roughly sentence-sized places.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# A break after . ! ? (optionally followed by a closing quote or bracket) and whitespace; the end
# mark is captured so that it stays with its sentence (a lookbehind would do it, three times slower).
_SENTENCE_BREAK = re.compile(r"([.!?][\"'”’)\]]?)\s+")
_WORD = re.compile(r"\w+")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; line breaks always end a sentence."""
    out: list[str] = []
    for line in text.splitlines():
        parts = _SENTENCE_BREAK.split(line)  # [text, end mark, text, end mark, …, text]
        for i in range(0, len(parts), 2):
            sentence = (parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i]).strip()
            if sentence:
                out.append(sentence)
    return out


def words(text: str) -> list[str]:
    """The lowercased words of ``text``: punctuation, quote styles and line wrapping do not matter."""
    if not text.isascii():  # NFKC is the identity on ASCII, and costly
        text = unicodedata.normalize("NFKC", text)
    return _WORD.findall(text.casefold())


def normalise(text: str) -> str:
    return " ".join(words(text))


def sentence_keys(text: str, min_words: int) -> set[bytes]:
    """8-byte hashes of the normalised sentences of ``text`` that have at least ``min_words`` words."""
    keys: set[bytes] = set()
    if len(text) < 2 * min_words - 1:  # n words need n characters and n - 1 separators
        return keys
    for sentence in split_sentences(text):
        w = words(sentence)
        if len(w) >= min_words:
            keys.add(hashlib.blake2b(" ".join(w).encode("utf-8"), digest_size=8).digest())
    return keys


def chunk_words(text: str, max_words: int) -> list[str]:
    """``text`` cut into pieces of at most ``max_words`` words, at sentence breaks where there are any."""
    chunks: list[str] = []
    current: list[str] = []
    for sentence in split_sentences(text):
        words = sentence.split()
        while len(words) > max_words:  # one sentence longer than a chunk: cut it at a word boundary
            if current:
                chunks.append(" ".join(current))
                current = []
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            chunks.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        chunks.append(" ".join(current))
    return chunks
