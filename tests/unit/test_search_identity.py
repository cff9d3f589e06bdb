"""An index's model identity under the shared weight digest, and indexes built with the older sampled one."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from dec2vec import Embedder, InputError
from dec2vec.foundations.fingerprint import module_digest
from dec2vec.search.identity import LEGACY_RULE, WEIGHTS_RULE, check_same_model, model_identity
from dec2vec.search.indexer import Index
from dec2vec.search.store import Store


def sampled_fingerprint(model: torch.nn.Module) -> str:
    """A verbatim copy of ``search.identity.weights_fingerprint`` as indexes were built with it before
    ``weights_rule`` (commit 80ecb33)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // 4096)
        sample = flat[::step][:4096].to(device="cpu", dtype=torch.bfloat16).contiguous()
        h.update(f"{name}:{tuple(t.shape)}:".encode())
        h.update(sample.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def emb(tiny_backbone):
    return Embedder.from_recipe("mean", tiny_backbone, device="cpu")


def changed(tiny_backbone) -> Embedder:
    other = Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    with torch.no_grad():
        other.backbone.model.layers[0].mlp.down_proj.weight.mul_(1.01)
    return other


def test_identity_uses_the_shared_digest_in_bfloat16(emb):
    ident = model_identity(emb)
    assert ident["weights_rule"] == WEIGHTS_RULE
    assert ident["weights"] == module_digest(emb, dtype=torch.bfloat16)
    assert json.loads(json.dumps(ident)) == dict(ident)  # stored as a plain JSON object


def build(path, embedder) -> Index:
    (path.parent / "rows.jsonl").write_text('{"text": "the cat sat on the mat"}\n{"text": "a star in the sky"}\n')
    index = Index(path, embedder)
    index.build([path.parent / "rows.jsonl"])
    return index


def make_legacy(path, weights: str) -> None:
    """Rewrite the index description as a dec2vec before ``weights_rule`` (and ``precision``) wrote it."""
    store = Store(path, create=False)
    meta = store.read_meta()
    model = {k: v for k, v in meta["model"].items() if k != "weights_rule"}
    kept = {k: v for k, v in meta.items() if k not in ("format", "precision")}
    store.write_meta({**kept, "model": {**model, "weights": weights}})


def test_an_index_built_with_the_sampled_fingerprint_still_opens_with_its_model(emb, tiny_backbone, tmp_path):
    db = tmp_path / "db"
    build(db, emb)
    make_legacy(db, sampled_fingerprint(emb))
    assert Index(db, emb).search("a star", k=1)  # the same model: accepted
    bf16 = Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="bfloat16")
    assert Index(db, bf16).search("a star", k=1)  # in bfloat16 too, as before
    with pytest.raises(InputError, match=r"different: weights"):
        Index(db, changed(tiny_backbone))
    build(db, emb)  # a build stores the identity under the current rule
    assert Store(db, create=False).read_meta()["model"]["weights_rule"] == WEIGHTS_RULE


def test_a_current_index_refuses_changed_weights_and_another_precision(emb, tiny_backbone, tmp_path):
    db = tmp_path / "db"
    build(db, emb)
    with pytest.raises(InputError, match=r"different: weights"):
        Index(db, changed(tiny_backbone))
    with pytest.raises(InputError, match=r"embedded in float32, but this model runs in bfloat16"):
        Index(db, Embedder.from_recipe("mean", tiny_backbone, device="cpu", dtype="bfloat16"))
    assert Store(db, create=False).read_meta()["precision"] == {"dtype": "float32", "quantize": None}


def test_an_index_opens_its_model_in_the_precision_it_was_built_in(emb, tmp_path):
    emb.save_pretrained(tmp_path / "model")
    built = Embedder.from_pretrained(tmp_path / "model", device="cpu", dtype="float32")
    index = build(tmp_path / "db", built)
    index.model_ref = str(tmp_path / "model")
    index.build([tmp_path / "rows.jsonl"])  # records model_ref
    reopened = Index.open(tmp_path / "db")  # no dtype asked: the index's, whatever the inference default
    assert reopened.embedder.dtype == torch.float32
    assert reopened.search("a star", k=1)[0].text == "a star in the sky"
    with pytest.raises(InputError, match=r"embedded in float32, but this model runs in bfloat16"):
        Index.open(tmp_path / "db", dtype="bfloat16")


def test_an_unknown_rule_is_refused_by_name(emb):
    stored = {**model_identity(emb), "weights_rule": "from-the-future"}
    with pytest.raises(InputError, match=r"weight digest \(from-the-future\) this version cannot compute"):
        check_same_model(stored, model_identity(emb), "db")
    legacy = {k: v for k, v in model_identity(emb).items() if k != "weights_rule"}
    with pytest.raises(InputError, match=rf"\({LEGACY_RULE}\) this version cannot compute"):
        check_same_model(legacy, dict(model_identity(emb)), "db")  # a plain dict cannot recompute it
