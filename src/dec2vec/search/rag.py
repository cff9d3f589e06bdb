"""``ask``: answer a question from the index with the same model's LM head (retrieval-augmented generation).

The embedder's backbone is still a causal LM: dec2vec makes attention bidirectional only inside its
own embedding forward, so ``backbone.generate`` is the untouched model. The top chunks go into one
prompt as numbered sources; each is cut (at a word boundary) to an equal share of the context budget,
so the prompt plus the answer always fit the model's context window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..evaluation.generation import chat_prompt, greedy_continuations
from .defaults import DEFAULT_CONTEXT_TOKENS, DEFAULT_INSTRUCTION, DEFAULT_K, DEFAULT_MAX_NEW_TOKENS
from .indexer import Hit, Index

MIN_PASSAGE_TOKENS = 16
SPARE_TOKENS = 8  # BOS, and tokens that merge differently once the passages are in
INSTRUCTIONS = (
    "Answer the question using only the numbered sources below. Cite the sources you use like [1]. "
    "If the sources do not contain the answer, say that you do not know."
)


@dataclass
class Answer:
    text: str
    sources: list[Hit]
    prompt: str = field(repr=False, default="")

    def to_json(self) -> dict[str, Any]:
        return {"answer": self.text, "sources": [h.to_json() for h in self.sources]}


def _n_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def truncate_tokens(tokenizer: Any, text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` tokens, at the last whitespace before the cut, with an ellipsis."""
    if limit < 1:
        return ""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= limit:
        return text
    cut = offsets[limit - 1][1]
    space = text.rfind(" ", 0, cut)
    if space > cut // 2:
        cut = space
    return text[:cut].rstrip() + " …"


def _label(hit: Hit) -> str:
    name = hit.title or hit.source.rsplit("/", 1)[-1]
    return f"{name}"


def _message(question: str, passages: list[tuple[Hit, str]]) -> str:
    lines = [INSTRUCTIONS, "", "Sources:"]
    lines += [f"[{i}] ({_label(h)}) {text}" for i, (h, text) in enumerate(passages, start=1)]
    lines += ["", f"Question: {question}"]
    return "\n".join(lines)


def build_prompt(tokenizer: Any, question: str, hits: list[Hit], budget: int) -> tuple[str, list[tuple[Hit, str]]]:
    """The full prompt (chat template when the tokenizer has one) within ``budget`` tokens, and its passages.

    Each passage gets an equal share of what the instructions and question leave; when a share would
    fall under 16 tokens, the lowest-ranked sources are dropped instead.
    """

    def render(passages: list[tuple[Hit, str]]) -> str:
        message = _message(question, passages)
        if getattr(tokenizer, "chat_template", None):
            return chat_prompt(tokenizer, message)
        return message + "\nAnswer:"

    budget -= SPARE_TOKENS
    fixed = _n_tokens(tokenizer, render([(h, "") for h in hits]))
    if hits and (budget - fixed) // len(hits) < MIN_PASSAGE_TOKENS:
        hits = hits[: max(1, (budget - fixed) // MIN_PASSAGE_TOKENS)]
        fixed = _n_tokens(tokenizer, render([(h, "") for h in hits]))
    if fixed >= budget:
        raise InputError(f"the question and instructions need {fixed} tokens, more than the context budget {budget}")
    share = (budget - fixed) // max(len(hits), 1)
    while True:  # a cut passage can tokenize longer in place (the ellipsis, merges): shrink until it fits
        passages = [(h, truncate_tokens(tokenizer, h.text, share)) for h in hits]
        prompt = render(passages)
        over = _n_tokens(tokenizer, prompt) - budget
        if over <= 0 or share <= 1:
            return prompt, passages
        share -= max(1, -(-over // max(len(hits), 1)))


def ask(
    index: Index,
    question: str,
    *,
    k: int = DEFAULT_K,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    instruction: str | None = DEFAULT_INSTRUCTION,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> Answer:
    """Retrieve the top ``k`` chunks for ``question`` and answer it greedily from them with the same model."""
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    emb = index.embedder
    limit = getattr(emb.backbone.config, "max_position_embeddings", None) or context_tokens
    budget = min(context_tokens, int(limit)) - max_new_tokens
    if budget < 1:
        raise InputError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt (context {limit})")
    hits = index.search(question, k=k, instruction=instruction)
    prompt, passages = build_prompt(emb.tokenizer, question, hits, budget)
    text = greedy_continuations(emb.backbone, emb.tokenizer, [prompt], max_new_tokens=max_new_tokens)[0]
    return Answer(text.strip(), [h for h, _ in passages], prompt)
