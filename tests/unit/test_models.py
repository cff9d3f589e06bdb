import hashlib
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


def test_gguf_backbones_pin_their_hash():
    for m in models.REGISTRY.values():
        if m.parts or m.subpath.endswith(".gguf"):
            assert m.sha256 and len(m.sha256) == 64, m.name


def _fake_split_model(monkeypatch, tmp_path, chunks):
    """A registered model split over fake installed packages (no pip, no downloads)."""
    dirs = {}
    for i, data in enumerate(chunks):
        d = tmp_path / "site" / f"pkg_part{i}"
        (d / "data").mkdir(parents=True)
        (d / "data" / f"x.part{i:02d}").write_bytes(data)
        dirs[f"pkg_part{i}"] = d
    dirs["pkg_meta"] = tmp_path / "site" / "pkg_meta"
    dirs["pkg_meta"].mkdir()
    monkeypatch.setattr(models, "_package_dir", lambda mod: dirs.get(mod))
    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    m = models.PackagedModel(
        name="fake-split",
        role="backbone",
        packages=("fake==1.0",),
        module="pkg_meta",
        subpath="",
        parts=tuple((f"pkg_part{i}", f"data/x.part{i:02d}") for i in range(len(chunks))),
        sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
    )
    monkeypatch.setitem(models.REGISTRY, m.name, m)
    return m, dirs


def test_split_model_is_joined_in_order_and_hash_checked(monkeypatch, tmp_path):
    chunks = [b"GGUF" + bytes(range(256)), b"second", b"third" * 100]
    m, dirs = _fake_split_model(monkeypatch, tmp_path, chunks)
    assert models.is_installed(m.name)
    joined = models._source_file(m)
    assert joined.read_bytes() == b"".join(chunks)
    assert models.sha256_file(joined) == m.sha256
    with pytest.raises(ModelNotFoundError, match="does not match the pinned"):
        models._convert_gguf(joined, tmp_path / "out", "0" * 64)
    assert not (tmp_path / "out").exists()


def test_split_model_needs_every_package(monkeypatch, tmp_path):
    m, dirs = _fake_split_model(monkeypatch, tmp_path, [b"a", b"b"])
    del dirs["pkg_meta"]
    assert not models.is_installed(m.name)
    with pytest.raises(ModelNotFoundError, match="is not installed"):
        models.resolve(m.name)
