"""A dec2vec model as one ONNX graph: token ids in, unit-length embeddings out.

The graph holds everything after tokenization: the light encoder and projector (Causal2Vec's
Contextual token, spliced into its slot), the backbone with the recipe's attention, the recipe's
pooling and the L2 normalisation. Tokenization stays outside, because templates, truncation and
the pooled-token marks are string work that ONNX cannot express; the folder therefore carries the
tokenizer(s) and ``dec2vec-onnx.json``, which names the inputs and the options that build them, and
:class:`dec2vec.export.runtime.OnnxEmbedder` rebuilds them with dec2vec's own text pipeline.

The graph is traced with PyTorch's TorchScript exporter (``dynamo=False``): it exports the
transformers 5 decoders as they run here, where the dynamo exporter does not yet take a graph with
a variable number of named inputs. Tracing records one path through Python branches, so the
example batch holds texts of two lengths: the padding-mask path is the one recorded, and it is
also right for batches without padding.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..embedding_model import EmbeddingModel
from ..errors import ConfigError
from ..foundations.files import atomic_folder
from ..foundations.provenance import library_versions
from ..quantize import DEFAULT_MAX_CREST, layer_crests

ONNX_NAME = "model.onnx"
SPEC_NAME = "dec2vec-onnx.json"
TOKENIZER_DIR = "tokenizer"
ENCODER_TOKENIZER_DIR = "encoder-tokenizer"
OUTPUT_NAME = "embedding"
FORMAT = 1
OPSET = 17
QUANTIZATIONS = ("int8",)
# the example batch that is traced: two lengths, so the recorded path is the one with padding
EXAMPLE_TEXTS = ["Hi.", "A longer text, so the batch has padding."]
# the smallest cosine between PyTorch and onnxruntime vectors that the export accepts (float32 graph)
MIN_COSINE = 0.999

INPUT_MEANINGS = {
    "input_ids": "backbone token ids: [BOS] [Contextual-token slot] template and text, EOS; right-padded with pad_id",
    "attention_mask": "1 for real tokens, 0 for padding",
    "pool_mask": "1 for the tokens of the text itself (mean pooling skips BOS, template, instruction and EOS)",
    "eos_index": "position of EOS in each row",
    "ctx_index": "position of the Contextual-token slot in each row (its id is a placeholder)",
    "encoder_input_ids": "light-encoder token ids of the bare text, special tokens included, cut at its limit",
    "encoder_attention_mask": "1 for real light-encoder tokens, 0 for padding",
}


class EncodeGraph(nn.Module):
    """What the ONNX graph computes: the reference forward, then L2 normalisation, in float32.

    Positional tensors because the tracer names graph inputs by position; ``names`` maps them back
    to the features dict that :meth:`EmbeddingModel.forward` reads.
    """

    def __init__(self, model: EmbeddingModel, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        features = dict(zip(self.names, tensors, strict=True))  # (B, T), (B,), (B, S) each
        vectors = self.model.forward(features).float()  # (B, D)
        return nn.functional.normalize(vectors, dim=-1)  # (B, D), unit rows as encode gives


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and how close onnxruntime came to PyTorch on the example batch."""

    folder: Path
    inputs: list[str]
    embedding_dim: int
    min_cosine: float
    onnx_bytes: int


def _dynamic_axes(features: dict[str, torch.Tensor]) -> dict[str, dict[int, str]]:
    """Batch and sequence axes of every input are free; the light encoder's length is its own axis."""
    axes: dict[str, dict[int, str]] = {}
    for name, t in features.items():
        seq = "encoder_sequence" if name.startswith("encoder_") else "sequence"
        axes[name] = {0: "batch"} if t.dim() == 1 else {0: "batch", 1: seq}
    axes[OUTPUT_NAME] = {0: "batch"}
    return axes


def _trace(graph: EncodeGraph, features: dict[str, torch.Tensor], path: Path, opset: int) -> None:
    names = list(features)
    with warnings.catch_warnings(), torch.no_grad():
        # tracer warnings flag Python branches on tensor values; the padded example makes the recorded
        # branch the general one (see the module docstring), so they say nothing actionable here
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            tuple(features[n] for n in names),
            str(path),
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes=_dynamic_axes(features),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _quantize(path: Path, keep_float: list[str]) -> list[str]:
    """onnxruntime's dynamic int8 quantization: int8 weights of MatMul/Gemm, activations quantized per call.

    ``keep_float`` names the model's linear layers that stay float (their inputs peak too far above
    their RMS for one int8 scale, :mod:`dec2vec.quantize`). The TorchScript exporter writes each
    node's module scope into its name, relative to the module that ran (``/model/layers.0/mlp/
    down_proj/MatMul`` for ``backbone.model.layers.0.mlp.down_proj``), so a node stays float when
    its scope is the tail of a kept layer's name. Returns the excluded node names.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(path), load_external_data=False).graph
    kept = ["." + name for name in keep_float]
    excluded = []
    for node in graph.node:
        scope = "." + node.name.rsplit("/", 1)[0].strip("/").replace("/", ".")
        if node.op_type in ("MatMul", "Gemm") and scope != "." and any(k.endswith(scope) for k in kept):
            excluded.append(node.name)
    fp32 = path.with_name("model.fp32.onnx")
    path.rename(fp32)
    quantize_dynamic(fp32, path, weight_type=QuantType.QInt8, nodes_to_exclude=excluded)
    fp32.unlink()
    return excluded


def _session_inputs(path: Path) -> tuple[Any, list[str]]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, [i.name for i in session.get_inputs()]


def spec_of(model: Any, inputs: list[str], *, source: str, quantize: str | None, opset: int) -> dict[str, Any]:
    """The JSON beside the graph: enough to rebuild its inputs, with dec2vec or by hand."""
    tt = model.pipeline.tokenizer
    encoder = model.pipeline.encoder
    return {
        "format": FORMAT,
        "source": source,
        "recipe": model.config.recipe,
        "recipe_options": model.config.recipe_options,
        "attention": "bidirectional" if model.recipe.bidirectional else "causal",
        "pooling": model.recipe.pooling,
        # the weights' and compute precision of the graph (always float32 here): its vectors are those
        # of Embedder.from_pretrained(source, dtype="float32"), not of a bfloat16 default load
        "precision": {"dtype": str(model.dtype).removeprefix("torch."), "quantize": quantize},
        "max_length": model.max_length,
        "encoder_max_length": encoder.max_length if encoder is not None else None,
        "tokens": {"bos_id": tt.bos_id, "eos_id": tt.eos_id, "pad_id": tt.pad_id, "bos_first": model.recipe.bos_first},
        "padding_side": "right",
        "tokenizer": TOKENIZER_DIR,
        "encoder_tokenizer": ENCODER_TOKENIZER_DIR if encoder is not None else None,
        "inputs": [
            {
                "name": n,
                "dtype": "int64",
                "shape": ["batch"]
                if n.endswith("_index")
                else ["batch", "encoder_sequence" if n.startswith("encoder_") else "sequence"],
                "meaning": INPUT_MEANINGS.get(n, ""),
            }
            for n in inputs
        ],
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": ["batch", model.embedding_dim],
            "normalized": True,
        },
        "embedding_dim": model.embedding_dim,
        "quantize": quantize,
        "opset": opset,
        "versions": library_versions(["onnx", "onnxruntime"]),
    }


def export_onnx(
    model: Any,  # an Embedder: EmbeddingModel with its text pipeline and tokenizer
    out: str | os.PathLike[str],
    *,
    source: str = "",
    quantize: str | None = None,
    max_crest: float = DEFAULT_MAX_CREST,
    opset: int = OPSET,
) -> ExportResult:
    """Write ``out/`` (model.onnx, dec2vec-onnx.json, tokenizer/ and, for Causal2Vec, encoder-tokenizer/).

    The folder appears only when complete and checked: onnxruntime must load the graph and give
    the PyTorch vectors of the example batch (cosine >= MIN_COSINE; quantized graphs are only
    measured, since int8 weights move vectors by design). With ``quantize="int8"`` the layers whose
    inputs peak over ``max_crest`` times their RMS stay float, as in ``Embedder.quantize``.
    """
    if model.device.type != "cpu" or model.dtype != torch.float32:
        raise ConfigError(f"ONNX export needs a float32 CPU model, got {model.dtype} on {model.device}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization '{quantize}'; known: {', '.join(QUANTIZATIONS)}")
    if getattr(model.encoder, "long_texts", "cut") != "cut":
        # the graph takes one encoder row per text; averaging windows would need a second, ragged input
        raise ConfigError("ONNX export of a model whose light encoder reads long texts in chunks is not supported")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a cut example (a small max_length) is still a fine example
        features = model.tokenize(EXAMPLE_TEXTS)  # CPU tensors: (B, T), (B,), (B, S)
    if bool(features["attention_mask"].all()):
        raise ConfigError("the traced example batch has no padding; the padding path would not be recorded")
    was_training = model.training
    model.eval()
    keep_float: list[str] = []
    excluded: list[str] = []
    if quantize is not None:  # the same measured rule as Embedder.quantize, on the float model
        crests, _ = layer_crests(model)
        keep_float = sorted(n for n, c in crests.items() if c > max_crest)
    try:
        graph = EncodeGraph(model, list(features))
        with torch.no_grad():
            expected = graph(*features.values()).numpy()  # (B, D)
        with atomic_folder(out) as tmp:
            path = tmp / ONNX_NAME
            _trace(graph, features, path, opset)
            if quantize is not None:
                excluded = _quantize(path, keep_float)
            session, inputs = _session_inputs(path)
            got = session.run([OUTPUT_NAME], {n: features[n].numpy() for n in inputs})[0]  # (B, D)
            min_cos = float(np.min(np.sum(got * expected, axis=1)))
            if quantize is None and min_cos < MIN_COSINE:
                raise ConfigError(f"the ONNX graph disagrees with PyTorch (cosine {min_cos:.4f}); not written")
            model.tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
            if model.encoder is not None:
                model.encoder.tokenizer.save_pretrained(tmp / ENCODER_TOKENIZER_DIR)
            spec = spec_of(model, inputs, source=source, quantize=quantize, opset=opset)
            if quantize is not None:
                spec["int8"] = {"max_crest": max_crest, "kept_float": keep_float, "excluded_nodes": len(excluded)}
            (tmp / SPEC_NAME).write_text(json.dumps(spec, indent=2) + "\n")
            size = path.stat().st_size
    finally:
        model.train(was_training)
    return ExportResult(Path(out), inputs, model.embedding_dim, min_cos, size)
