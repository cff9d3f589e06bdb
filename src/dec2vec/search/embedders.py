"""The instruction a search query is embedded with, for any kind of model.

The index and the server embed with whatever :func:`~dec2vec.text_embedders.load_text_embedder`
loads (a dec2vec ``Embedder`` or an encoder-only model); what differs between them is answered in
:mod:`dec2vec.encoder_only`. Only the search default instruction is a search concern, so it is here.
"""

from __future__ import annotations

from ..encoder_only import is_encoder_only, refuse_instruction
from ..text_embedders import TextEmbedder
from .defaults import DEFAULT_INSTRUCTION


def query_instruction(embedder: TextEmbedder, instruction: str | None) -> str | None:
    """The instruction to embed a query with: the default one is dropped for a model that takes none.

    Any other instruction is the caller's choice, so an encoder refuses it rather than ignore it.
    """
    if not instruction or not is_encoder_only(embedder):
        return instruction or None
    if instruction == DEFAULT_INSTRUCTION:
        return None
    hint = "search without one (leave out --instruction, or pass --no-instruction)"
    refuse_instruction(embedder.config.backbone, instruction, hint=hint)
    return None  # not reached: refused above
