"""The RAG prompt: numbered sources and the question, cut to fit the model's context window.

Each source is cut (at a word boundary) to an equal share of the budget the instructions and the
question leave, so the prompt plus the answer always fit.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..generation import chat_prompt
from .hits import Hit

MIN_PASSAGE_TOKENS = 16
SPARE_TOKENS = 8  # BOS, and tokens that merge differently once the passages are in
INSTRUCTIONS = (
    "Answer the question using only the numbered sources below. Cite the sources you use like [1]. "
    "If the sources do not contain the answer, say that you do not know."
)


def n_tokens(tokenizer: Any, text: str) -> int:
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


def _message(question: str, passages: list[tuple[Hit, str]]) -> str:
    lines = [INSTRUCTIONS, "", "Sources:"]
    lines += [f"[{i}] ({h.label}) {text}" for i, (h, text) in enumerate(passages, start=1)]
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
    fixed = n_tokens(tokenizer, render([(h, "") for h in hits]))
    if hits and (budget - fixed) // len(hits) < MIN_PASSAGE_TOKENS:
        hits = hits[: max(1, (budget - fixed) // MIN_PASSAGE_TOKENS)]
        fixed = n_tokens(tokenizer, render([(h, "") for h in hits]))
    if fixed >= budget:
        raise InputError(f"the question and instructions need {fixed} tokens, more than the context budget {budget}")
    share = (budget - fixed) // max(len(hits), 1)
    while True:  # a cut passage can tokenize longer in place (the ellipsis, merges): shrink until it fits
        passages = [(h, truncate_tokens(tokenizer, h.text, share)) for h in hits]
        prompt = render(passages)
        over = n_tokens(tokenizer, prompt) - budget
        if over <= 0 or share <= 1:
            return prompt, passages
        share -= max(1, -(-over // max(len(hits), 1)))
