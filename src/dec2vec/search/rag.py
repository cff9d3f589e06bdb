"""``ask``: answer a question from the index, grounded in the retrieved text or not at all.

1. Retrieve the top ``k`` chunks. When the best is weak next to the index's background (see
   :mod:`.grounding`), answer "I cannot answer that from the indexed documents." (mode ``none``).
2. With a language model (a decoder embedder; ``mode`` ``auto`` or ``generate``): prompt the
   *base* LM (:mod:`.language_model`) with the numbered passages, greedily, and keep the
   generated sentences up to the first one the passages do not support (mode ``generated``).
3. Otherwise, or when nothing generated is supported: the passage sentence that best answers the
   question, scored with the same embedding model, quoted with its citation (mode ``extractive``;
   any embedding model can do this, encoder-only ones included); when no sentence shares a word
   with the question, "cannot answer" again.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..encoder_only import is_encoder_only
from ..errors import InputError
from .defaults import (
    ASK_MODES,
    DEFAULT_CONTEXT_TOKENS,
    DEFAULT_INSTRUCTION,
    DEFAULT_K,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_MIN_RELEVANCE,
)
from .grounding import (
    LEXICAL_WEIGHT,
    content_words,
    lexical_overlap,
    refers_back,
    relevance,
    split_sentences,
    supported_prefix,
)
from .hits import Hit
from .indexer import Index
from .language_model import LanguageModel, language_model_of
from .prompt import build_prompt, truncate_tokens

__all__ = ["Answer", "ask", "build_prompt", "truncate_tokens"]

Mode = Literal["auto", "extractive", "generate"]
NO_ANSWER = "I cannot answer that from the indexed documents."
MIN_BACKGROUND = 16  # sampled chunks needed to judge relevance; a smaller index is not judged

_MODELS: weakref.WeakKeyDictionary[Index, LanguageModel | None] = weakref.WeakKeyDictionary()


@dataclass
class Answer:
    text: str
    mode: str  # "generated", "extractive" or "none": how ``text`` was produced
    sources: list[Hit]  # the retrieved passages, numbered from 1 as the answer cites them
    citations: list[int] = field(default_factory=list)  # numbers of the sources ``text`` comes from
    relevance: float | None = None  # the top hit's strength next to the background; None: index too small
    reason: str = ""  # why generation was not used, or why there is no answer
    generated: str = ""  # the language model's own output, when it ran (kept also when rejected)
    prompt: str = field(repr=False, default="")

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "mode": self.mode,
            "citations": self.citations,
            "relevance": self.relevance,
            "reason": self.reason,
            "generated": self.generated,
            "sources": [h.to_json() for h in self.sources],
        }


def _marks(citations: list[int]) -> str:
    return "".join(f"[{c}]" for c in citations)


def language_model(index: Index) -> LanguageModel | None:
    """The base LM ``ask`` generates with for this index (loaded once per index), or None for an encoder."""
    if index not in _MODELS:
        _MODELS[index] = language_model_of(index.embedder, index.model_ref)
    return _MODELS[index]


def extract(index: Index, question: str, query: np.ndarray, background: np.ndarray, hits: list[Hit]) -> Answer:
    """The passage sentence that best answers ``question``, with its citation.

    Each sentence is embedded as a document with the index's model; its score is its relevance to
    the query (against the same background as the hits) plus half the share of the question's
    content words it contains, which steadies the untrained models whose cosines rank loosely.
    Only a sentence that shares a content word with the question may be quoted (when none does:
    "cannot answer"): one without does not answer it, however its embedding scores. A sentence
    that opens with a pronoun ("She was the first woman in space") comes with the one
    before it, which says who.
    """
    per_hit = [split_sentences(h.text) for h in hits]
    where = [(i, j) for i, sentences in enumerate(per_hit) for j in range(len(sentences))]
    overlap = lexical_overlap(question, [per_hit[i][j] for i, j in where])  # (n,)
    if content_words(question):  # a question of stopwords only ("Who is he?") cannot be matched by words
        where, overlap = [w for w, o in zip(where, overlap, strict=True) if o > 0], overlap[overlap > 0]
    if not where:
        return Answer(NO_ANSWER, "none", hits, reason="no sentence of the sources shares a word with the question")
    vectors = index.embedder.encode([per_hit[i][j] for i, j in where], show_progress=False)  # (n, D)
    score = relevance(vectors @ query, background) + LEXICAL_WEIGHT * overlap  # (n,)
    i, j = where[int(np.argmax(score))]
    quote = per_hit[i][j]
    if j > 0 and refers_back(quote):
        quote = f"{per_hit[i][j - 1]} {quote}"
    return Answer(f"{quote} {_marks([i + 1])}", "extractive", hits, [i + 1])


def ask(
    index: Index,
    question: str,
    *,
    k: int = DEFAULT_K,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    instruction: str | None = DEFAULT_INSTRUCTION,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    mode: Mode = "auto",
    min_relevance: float = DEFAULT_MIN_RELEVANCE,
    lm: LanguageModel | None = None,
) -> Answer:
    """Answer ``question`` from the top ``k`` chunks; see the module docstring for the three outcomes.

    ``mode``: ``auto`` generates when the model has a language model and falls back to extraction;
    ``extractive`` never generates; ``generate`` answers "cannot answer" rather than extract.
    ``lm``: the language model to generate with (default: the index model's base LM).
    """
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty")
    if mode not in ASK_MODES:
        raise InputError(f"mode must be one of {', '.join(ASK_MODES)}, got {mode!r}")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if mode == "generate" and lm is None and is_encoder_only(index.embedder):
        raise InputError(
            f"{index.model_ref or 'this model'} is an encoder-only model: it has no language model to generate "
            "an answer with; answer extractively (mode extractive or auto), or use a decoder model's index"
        )
    query = index.query_vector(question, instruction)
    hits = index.nearest(query, k)
    background = index.background(query)
    strength = float(relevance(hits[0].score, background)) if len(background) >= MIN_BACKGROUND else None
    if strength is not None and strength < min_relevance:
        reason = f"the best passage is weak: relevance {strength:.2f} < {min_relevance:g}"
        return Answer(NO_ANSWER, "none", hits, relevance=strength, reason=reason)
    if mode != "extractive" and lm is None:
        lm = language_model(index)  # loaded here, once per index: a weak question never waits for it
    reason, generated, prompt = "", "", ""
    if mode != "extractive" and lm is not None:
        limit = lm.context_window or context_tokens
        budget = min(context_tokens, limit) - max_new_tokens
        if budget < 1:
            raise InputError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt (context {limit})")
        prompt, passages = build_prompt(lm.tokenizer, question, hits, budget)
        hits = [h for h, _ in passages]
        generated = lm.generate([prompt], max_new_tokens)[0].strip()
        kept = supported_prefix(generated, question, [text for _, text in passages])
        if kept:
            citations = sorted({s.passage + 1 for _, s in kept})
            text = f"{' '.join(sentence for sentence, _ in kept)} {_marks(citations)}"
            return Answer(text, "generated", hits, citations, strength, generated=generated, prompt=prompt)
        reason = "the generated answer is not supported by the sources"
        if mode == "generate":
            return Answer(NO_ANSWER, "none", hits, [], strength, reason, generated, prompt)
    elif lm is None and mode == "auto":
        reason = "encoder-only model: no language model to generate with"
    answer = extract(index, question, query, background, hits)
    answer.relevance, answer.generated, answer.prompt = strength, generated, prompt
    answer.reason = "; ".join(r for r in (reason, answer.reason) if r)
    return answer
