"""``OnnxEmbedder``: an exported folder run by onnxruntime, with ``Embedder.encode``'s inputs.

The inputs are built by the same code as ``Embedder.encode`` builds them (:class:`TextPipeline`
for templates, BOS/EOS, the Contextual slot, truncation and the light encoder's ids;
``engine.plan_work`` for the length-sorted token-budget batches), so the vectors match the PyTorch
model's up to float rounding. Only the forward pass runs elsewhere: no torch model is built.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..encoder import EncoderTokenizer
from ..engine import ENCODE_CHUNK, Batch, EncodeOptions, plan_work
from ..errors import ConfigError, ModelNotFoundError
from ..pipeline import TextPipeline, TruncationWarning, validate_texts
from ..recipes import get_recipe
from .onnx import FORMAT, ONNX_NAME, OUTPUT_NAME, SPEC_NAME

DEFAULT_MAX_TOKENS = 1024  # padded tokens per batch: the CPU default of Embedder.encode


def read_spec(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``dec2vec-onnx.json`` of an export folder, or a ModelNotFoundError saying what is missing."""
    folder = Path(folder)
    path = folder / SPEC_NAME
    if not path.is_file() or not (folder / ONNX_NAME).is_file():
        raise ModelNotFoundError(f"'{folder}' is not an ONNX export of dec2vec: {SPEC_NAME} or {ONNX_NAME} is missing")
    spec = json.loads(path.read_text())
    if spec.get("format") != FORMAT:
        raise ConfigError(f"{path}: format {spec.get('format')} is not one this dec2vec reads ({FORMAT})")
    return spec


class OnnxEmbedder:
    """Texts in, unit-length float32 vectors out, from a folder written by ``dec2vec export --format onnx``.

    ``providers`` are onnxruntime execution providers (default: CPU); ``threads`` caps its
    intra-op threads (default: onnxruntime's choice).
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, providers: Sequence[str] | None = None, threads: int | None = None
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        self.spec = read_spec(self.folder)
        spec = self.spec
        self.recipe = get_recipe(spec["recipe"])(spec["recipe_options"])
        tokenizer = AutoTokenizer.from_pretrained(self.folder / spec["tokenizer"])
        encoder = None
        if spec.get("encoder_tokenizer"):
            enc_tok = AutoTokenizer.from_pretrained(self.folder / spec["encoder_tokenizer"])
            encoder = EncoderTokenizer(enc_tok, int(spec["encoder_max_length"]))
        self.pipeline = TextPipeline(self.recipe, tokenizer, encoder, int(spec["max_length"]))
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.folder / ONNX_NAME), options, providers=list(providers or ["CPUExecutionProvider"])
        )
        self.input_names = [i.name for i in self.session.get_inputs()]

    @property
    def embedding_dim(self) -> int:
        return int(self.spec["embedding_dim"])

    @property
    def max_length(self) -> int:
        """Longest backbone input in tokens, template included; longer texts are cut or refused."""
        return self.pipeline.max_length

    def features(
        self, texts: str | Sequence[str], instruction: str | None = None, truncate: bool = True
    ) -> dict[str, np.ndarray]:
        """One padded batch of the graph's inputs (int64 arrays), for callers that run the session themselves."""
        prepared = self.pipeline.prepare(validate_texts(texts), instruction, truncate)
        feats = self.pipeline.features(prepared)
        return {n: feats[n].numpy() for n in self.input_names}

    def encode(
        self,
        texts: str | Sequence[str],
        instruction: str | None = None,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_batch_size: int | None = None,
        truncate: bool = True,
    ) -> np.ndarray:
        """(n, embedding_dim) float32 unit vectors, rows in input order, as ``Embedder.encode`` gives them.

        ``instruction`` is written before every text with the recipe's template; texts over
        ``max_length`` are cut (one :class:`TruncationWarning`) or, with ``truncate=False``, refused.
        """
        texts = validate_texts(texts)  # every item checked before any work
        opts = EncodeOptions(
            instruction=instruction,
            chunk_size=ENCODE_CHUNK,
            max_tokens=max_tokens,
            max_batch_size=max_batch_size,
            truncate=truncate,
            packed=False,
        )
        out = np.empty((len(texts), self.embedding_dim), dtype=np.float32)
        start, cut = 0, []
        for item in plan_work(texts, self.pipeline, opts, budget=max_tokens, pin=False):
            if isinstance(item, Batch):
                feed = {n: item.features[n].numpy() for n in self.input_names}
                rows = start + np.asarray(item.rows)
                out[rows] = self.session.run([OUTPUT_NAME], feed)[0]  # (b, D)
            else:  # the end of a block: its rows are done
                cut.extend(item.truncated)
                start += item.size
        if cut:
            warnings.warn(TruncationWarning(cut), stacklevel=2)
        return out
