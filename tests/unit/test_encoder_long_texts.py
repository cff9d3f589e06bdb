"""The light encoder's policy for texts over its limit: cut (as trained) or read whole in windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dec2vec import Embedder
from dec2vec.encoder import average_windows
from dec2vec.errors import ConfigError
from dec2vec.pipeline import TruncationWarning
from dec2vec.pooling import mean_pool

LONG = "the quick brown fox jumps over the lazy dog and the cat sat on the rug . " * 12


@pytest.fixture(scope="module")
def chunked(tiny_backbone, tiny_encoder) -> Embedder:
    return Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu", encoder_long_texts="chunk")


def test_average_windows_weights_each_window_by_its_tokens():
    pooled = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])  # (R=3, e=2)
    out = average_windows(pooled, torch.tensor([3, 1, 5]), torch.tensor([0, 0, 1]))
    torch.testing.assert_close(out, torch.tensor([[0.75, 0.25], [2.0, 2.0]]))


def test_a_long_text_is_read_in_windows_and_averaged(chunked):
    enc = chunked.encoder
    feats = enc.tokenize([LONG, "a dog runs"])
    owner = feats["encoder_owner"]
    windows = int((owner == 0).sum())
    assert windows > 1 and owner.tolist() == [0] * windows + [1]
    assert int(feats["encoder_attention_mask"][:windows].sum()) > enc.max_length  # nothing of the text was cut
    with torch.no_grad():
        got = enc.encode_features(feats)  # (2, e)
        hidden = enc.model(
            input_ids=feats["encoder_input_ids"], attention_mask=feats["encoder_attention_mask"]
        ).last_hidden_state
        per = mean_pool(hidden, feats["encoder_attention_mask"])  # (R, e): each window alone
        w = feats["encoder_attention_mask"].sum(1).float()[:windows, None]
        want = (per[:windows] * w).sum(0) / w.sum()
    torch.testing.assert_close(got[0], want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], per[windows], rtol=1e-5, atol=1e-6)


def test_chunking_changes_only_texts_over_the_limit(tiny_backbone, tiny_encoder, chunked):
    cut = Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu")
    short = ["the cat sat on the mat .", "a dog runs"]
    np.testing.assert_allclose(chunked.encode(short), cut.encode(short), rtol=1e-5, atol=1e-6)
    with pytest.warns(TruncationWarning):  # only the cut model cuts
        b = cut.encode([LONG])
    a = chunked.encode([LONG])
    assert float(a[0] @ b[0]) < 0.99999  # the long text's windows after the limit now count


def test_windows_are_batch_invariant(chunked):
    texts = [LONG, "a dog runs", LONG[: len(LONG) // 2]]
    together = chunked.encode(texts)
    alone = np.concatenate([chunked.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_the_policy_is_saved_and_restored(tmp_path, chunked):
    chunked.save_pretrained(tmp_path / "m")
    back = Embedder.from_pretrained(tmp_path / "m")
    assert back.config.encoder_long_texts == "chunk" and back.encoder.long_texts == "chunk"


def test_unknown_policy_and_onnx_export_of_a_chunking_model_are_refused(tmp_path, tiny_backbone, tiny_encoder, chunked):
    with pytest.raises(ConfigError, match="encoder_long_texts"):
        Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu", encoder_long_texts="split")
    from dec2vec.export.onnx import export_onnx

    with pytest.raises(ConfigError, match="chunks"):
        export_onnx(chunked, tmp_path / "onnx")


def test_the_teacher_cache_of_a_chunking_teacher_is_its_own(tmp_path, tiny_encoder):
    from dec2vec.train.teacher import TeacherCache

    cut = TeacherCache(str(tiny_encoder), root=tmp_path)
    chunk = TeacherCache(str(tiny_encoder), root=tmp_path, long_texts="chunk")
    assert cut.dir != chunk.dir and cut.dir.name.endswith("-native")
