"""sentence-transformers on the same backbone folder and pooling, and all-MiniLM-L6-v2: the yardsticks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# dec2vec recipe -> sentence-transformers pooling mode computing the same kind of embedding
ST_POOLING = {"mean": "mean", "last-token": "lasttoken"}


def st_backbone(folder: Path, pooling: str, device: torch.device, dtype: torch.dtype, max_length: int) -> Any:
    """``SentenceTransformer`` of Transformer(folder) + Pooling(pooling), as a user would build it."""
    from sentence_transformers import SentenceTransformer, models

    try:
        word = models.Transformer(str(folder), model_kwargs={"dtype": dtype}, max_seq_length=max_length)
    except TypeError:  # sentence-transformers < 6 names it model_args
        word = models.Transformer(str(folder), model_args={"dtype": dtype}, max_seq_length=max_length)
    modalities = getattr(word, "modality_config", None)
    if isinstance(modalities, dict) and "message" in modalities and "text" in modalities:
        # sentence-transformers >= 6 wraps texts in an instruct model's chat template (~25 more
        # tokens each here); the comparison is of the same tokens, so pin the plain text modality
        plain = {k: v for k, v in modalities.items() if k != "message"}
        word = models.Transformer(
            str(folder),
            model_kwargs={"dtype": dtype},
            max_seq_length=max_length,
            modality_config=plain,
            module_output_name=word.module_output_name,
        )
    tok = word.tokenizer
    if tok.pad_token is None:  # decoder tokenizers often have none; padding needs one
        tok.pad_token = tok.eos_token
    dim = word.auto_model.config.hidden_size
    model = SentenceTransformer(modules=[word, models.Pooling(dim, pooling)], device=str(device))
    return model.to(dtype)


def st_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> Any:
    """A sentence-transformers model folder (all-MiniLM-L6-v2), loaded as published."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device=str(device)).to(dtype)


def st_lengths(model: Any, texts: list[str]) -> list[int]:
    """Tokens per text as the sentence-transformers model feeds them (``preprocess`` in v6, ``tokenize`` before)."""
    prep = getattr(model, "preprocess", None) or model.tokenize
    out: list[int] = []
    for i in range(0, len(texts), 512):
        out.extend(int(x) for x in prep(texts[i : i + 512])["attention_mask"].sum(dim=1).tolist())
    return out


def st_encode(model: Any, texts: list[str], batch_size: int) -> Any:
    return model.encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
