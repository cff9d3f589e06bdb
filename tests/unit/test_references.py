"""``resolve_model``: the one function that says what a model string is (nothing is loaded here)."""

import pytest

from dec2vec import Embedder, pretrained
from dec2vec.errors import ModelNotFoundError
from dec2vec.references import resolve_model


def test_each_kind_of_model_string(tiny_backbone, tmp_path, monkeypatch):
    shipped = resolve_model(pretrained.DEFAULT_MODEL)
    assert shipped.kind == "shipped" and shipped.where == pretrained.path(pretrained.DEFAULT_MODEL)
    assert resolve_model("echo").kind == "recipe" and resolve_model("echo").where == "echo"
    assert resolve_model("all-minilm-l6-v2").kind == "encoder-only"
    assert resolve_model("smollm2-135m-instruct").kind == "backbone"
    assert not resolve_model("smollm2-135m-instruct").is_dec2vec and resolve_model("echo").is_dec2vec
    folder = tmp_path / "saved"
    Embedder.from_recipe("mean", tiny_backbone, device="cpu").save_pretrained(folder)
    assert resolve_model(folder) == resolve_model(str(folder))
    assert resolve_model(folder).kind == "folder" and resolve_model(folder).where == folder
    monkeypatch.chdir(tmp_path)
    folder.rename(tmp_path / "echo")  # a saved folder wins over the recipe name it shadows
    assert resolve_model("echo").kind == "folder"
    (tmp_path / "stray").mkdir()
    with pytest.raises(ModelNotFoundError, match="'stray' is not a saved dec2vec model"):
        resolve_model("stray")


def test_unknown_strings_name_the_choices():
    with pytest.raises(ModelNotFoundError, match="neither a saved dec2vec model folder nor a recipe; recipes: .*echo"):
        resolve_model("no-such-model-anywhere")
