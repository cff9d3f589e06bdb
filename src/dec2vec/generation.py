"""Text generation with a backbone's own LM head, shared by evaluation and ``dec2vec ask``.

Evaluation measures whether a trained backbone still writes (:mod:`dec2vec.evaluation.generation`)
and search answers questions with it (:mod:`dec2vec.search.language_model`); both need the same
greedy decoding and chat prompt, so neither service imports the other for them. The backbone's own
``generate`` builds the usual causal mask, whatever the recipe (bidirectional attention exists only
inside :func:`dec2vec.attention.run_decoder`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .errors import InputError

CHAT_QUESTION = "What is the capital of France? Answer in one sentence."


def chat_prompt(tokenizer: Any, question: str = CHAT_QUESTION) -> str:
    """``question`` as one user turn in the tokenizer's chat template, ready for the assistant's answer."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the tokenizer has no chat template")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    return str(text)


def device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s weights are: inputs go there unless the caller says otherwise."""
    return next(model.parameters()).device


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block, then every submodule's own flag back (a frozen part may sit in eval)."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, was in modes.items():
            m.training = was


def greedy_continuations(
    model: nn.Module,
    tokenizer: Any,
    prompts: list[str],
    *,
    max_new_tokens: int = 32,
    device: str | torch.device | None = None,
) -> list[str]:
    """The greedy continuation of each prompt (new text only, special tokens dropped).

    One prompt at a time, so there is no padding to get wrong. A prompt that already starts with
    the BOS text (a chat template's output) gets no second BOS from the tokenizer.
    """
    dev = torch.device(device) if device is not None else device_of(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    bos = tokenizer.bos_token
    out: list[str] = []
    with eval_mode(model), torch.inference_mode():
        for p in prompts:
            enc = tokenizer(p, return_tensors="pt", add_special_tokens=not (bos and p.startswith(bos)))
            n = enc["input_ids"].shape[1]
            gen = model.generate(
                input_ids=enc["input_ids"].to(dev),  # (1, n)
                attention_mask=enc["attention_mask"].to(dev),  # (1, n)
                do_sample=False,
                num_beams=1,
                max_new_tokens=max_new_tokens,
                pad_token_id=pad_id,
            )  # (1, n + new)
            out.append(tokenizer.decode(gen[0, n:], skip_special_tokens=True))
    return out
