"""What ``encode`` does by default has one home: ``EncodeOptions`` (engine.py).

The public entry points keep their keyword arguments spelled out (a typed signature is their
documentation), and each turns them into one ``EncodeOptions`` or hands them to one that does.
This test binds every spelled-out default to ``EncodeOptions``'s, so none can drift, and lists the
few that differ on purpose, with why.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from dec2vec.encoder_only import EncoderOnlyEmbedder
from dec2vec.encoding import TextEncoding
from dec2vec.engine import EncodeOptions

OPTIONS = {f.name: f.default for f in dataclasses.fields(EncodeOptions)}

#: (entry point, keyword) -> its default, where it differs from EncodeOptions' on purpose
DIFFERENT = {
    # onnxruntime runs on the CPU and has no torch device to pick a token budget from: the CPU one
    ("OnnxEmbedder.encode", "max_tokens"): 1024,
    # the Ray integration's own documented cap on texts per forward pass (docs/RAY.md); changing it
    # would change how existing Ray jobs batch
    ("EmbedBatch", "max_batch_size"): 256,
}


def _entry_points() -> dict[str, Any]:
    out: dict[str, Any] = {
        "Embedder.encode": TextEncoding.encode,
        "Embedder.encode_iter": TextEncoding.encode_iter,
        "EncoderOnlyEmbedder.encode": EncoderOnlyEmbedder.encode,
        "EncoderOnlyEmbedder.encode_iter": EncoderOnlyEmbedder.encode_iter,
    }
    try:
        from dec2vec.export.runtime import OnnxEmbedder

        out["OnnxEmbedder.encode"] = OnnxEmbedder.encode
    except ImportError:  # the export extra is not installed
        pass
    try:
        from dec2vec.integrations.ray import EmbedBatch

        out["EmbedBatch"] = EmbedBatch.__init__
    except ImportError:  # the ray extra is not installed
        pass
    return out


def _differences(entry_points: dict[str, Any]) -> dict[tuple[str, str], Any]:
    found = {}
    for name, fn in entry_points.items():
        for param in inspect.signature(fn).parameters.values():
            if param.name in OPTIONS and param.default != OPTIONS[param.name]:
                found[(name, param.name)] = param.default
    return found


def test_every_encode_default_is_encode_options_or_differs_on_purpose():
    entry_points = _entry_points()
    expected = {k: v for k, v in DIFFERENT.items() if k[0] in entry_points}
    assert _differences(entry_points) == expected
    # the four that every install has spell out the options they take
    assert {"instruction", "normalize", "max_tokens", "max_batch_size", "truncate"} <= set(
        inspect.signature(EncoderOnlyEmbedder.encode).parameters
    )
    assert set(OPTIONS) <= set(inspect.signature(TextEncoding.encode_iter).parameters)


def test_a_drifted_default_is_seen():
    def encode(texts, instruction=None, normalize=False, *, max_tokens=None):  # normalize drifted
        raise NotImplementedError

    assert _differences({"drifted": encode}) == {("drifted", "normalize"): False}


@pytest.mark.parametrize("key", list(DIFFERENT))
def test_each_listed_difference_names_a_real_option(key):
    assert key[1] in OPTIONS
