from pathlib import Path

import pytest

from dec2vec import ModelNotFoundError, models


def test_resolve_local_folder_and_hub_id(tmp_path):
    assert models.resolve(tmp_path) == tmp_path
    assert models.resolve("org/model-name") == "org/model-name"  # left to transformers
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        models.resolve(tmp_path / "missing")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        models.resolve(f)


def test_unknown_pull():
    with pytest.raises(ModelNotFoundError, match="unknown model 'nope'"):
        models.pull("nope")


def test_gguf_detection(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"")
    assert models.gguf_in(tmp_path) == "m.gguf"
    (tmp_path / "config.json").write_text("{}")
    assert models.gguf_in(tmp_path) is None


def test_registry_pins_versions():
    for m in models.REGISTRY.values():
        assert all("==" in p for p in m.packages), m.name
    assert models.REGISTRY[models.DEFAULT_BACKBONE].sha256


def test_cache_home_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path))
    assert models.cache_home() == Path(tmp_path)
