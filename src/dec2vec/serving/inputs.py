"""What a request's input fields mean for the model: texts from token ids, instructions from prompt names.

Token ids (as OpenAI, vLLM and TEI accept them) are ids of the *served model's* tokenizer, checked
against its vocabulary size and decoded to text, which then runs through the recipe's template like
any text. Why decode rather than feed the ids: the template, BOS/EOS and (Causal2Vec) the light
encoder, which has a tokenizer of its own, all start from text. Ids from another tokenizer (a client
that tokenizes with OpenAI's tiktoken, such as LangChain's default) are either outside the
vocabulary (a 400) or decode to other text; the server cannot tell the second case apart, which is
why docs/SERVING.md says to switch that client's tokenizing off.
"""

from __future__ import annotations

from typing import Any

from .errors import APIError


def vocab_size(tokenizer: Any) -> int:
    """Ids a request may send: 0 .. vocab_size - 1 (added tokens included)."""
    return len(tokenizer)


def request_texts(value: str | list[Any], field: str, tokenizer: Any) -> tuple[list[str], bool]:
    """The texts a validated ``input``/``inputs`` value stands for, and whether it was a single item.

    ``value`` has passed :func:`~.schemas.check_texts`: a text, texts, one token array or token arrays.
    """
    if isinstance(value, str):
        return [value], True
    if isinstance(value[0], str):
        return list(value), False
    if isinstance(value[0], int):  # one array
        return [_decode(value, field, tokenizer)], True
    return [_decode(ids, f"{field}[{i}]", tokenizer) for i, ids in enumerate(value)], False


def _decode(ids: list[int], param: str, tokenizer: Any) -> str:
    size = vocab_size(tokenizer)
    for j, tid in enumerate(ids):
        if tid >= size:
            raise APIError(
                400,
                f"{param}[{j}] is token id {tid}, outside the served model's vocabulary (0..{size - 1}): token ids "
                "must come from this model's tokenizer (GET /info: vocab_size), or send the text",
                param=f"{param}[{j}]",
                code="invalid_input",
            )
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if not text.strip():
        raise APIError(
            400,
            f"{param}: the token ids decode to empty text (special tokens are dropped)",
            param=param,
            code="invalid_input",
        )
    return text


def instruction_for(prompts: dict[str, str], prompt_name: str | None, instruction: str | None) -> str | None:
    """The instruction a request asks for: its own, or the model's saved prompt ``prompt_name``.

    An empty saved prompt (a ``document`` prompt, usually) means no instruction.
    """
    if prompt_name is None:
        return instruction
    if instruction is not None:
        raise APIError(400, "send instruction or prompt_name, not both", param="prompt_name", code="invalid_value")
    if prompt_name not in prompts:
        known = f"known: {', '.join(sorted(prompts))}" if prompts else "this model has no saved prompts"
        raise APIError(
            400,
            f"prompt_name '{prompt_name}' is not one of the model's prompts ({known})",
            param="prompt_name",
            code="invalid_value",
        )
    return prompts[prompt_name] or None
