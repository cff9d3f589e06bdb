"""One model name, one set of vectors: the API, the CLI, the server and sentence-transformers agree at
their default flags (issue 28), on a tiny saved model; and a folder saved either way loads both ways."""

import json

import numpy as np
import openai
import pytest

from dec2vec import Embedder
from dec2vec.cli import main
from dec2vec.device import cpu_has_native_bf16
from dec2vec.io import sidecar_path
from dec2vec.serving.app import create_app
from dec2vec.serving.server import BackgroundServer
from dec2vec.serving.settings import ServerSettings
from dec2vec.text_embedders import load_text_embedder
from tests.conftest import SENTENCES, cos_rows

pytestmark = pytest.mark.usefixtures("one_thread_module")

DEFAULT = "bfloat16" if cpu_has_native_bf16() else "float32"  # this CPU's inference default (device.py)


@pytest.fixture(scope="module")
def folder(tiny_backbone, tiny_encoder, tmp_path_factory):
    """A saved Causal2Vec folder (float32 weights, as training saves them)."""
    path = tmp_path_factory.mktemp("same") / "c2v"
    Embedder.from_recipe("causal2vec", tiny_backbone, tiny_encoder, device="cpu").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def api(folder):
    return Embedder.from_pretrained(folder, device="cpu")  # default flags


def cli_vectors(capsys, *argv) -> np.ndarray:
    assert main(["embed", *map(str, argv), "--json"]) == 0
    return np.array(json.loads(capsys.readouterr().out))


def test_the_api_loads_in_the_inference_default(api):
    assert str(api.dtype) == f"torch.{DEFAULT}"


def test_server_cli_and_api_agree_at_default_flags(folder, api, capsys):
    want = api.encode(SENTENCES)
    cli = cli_vectors(capsys, "--model", folder, *SENTENCES)
    assert cos_rows(cli, want).min() >= 0.9999
    with BackgroundServer(create_app(load_text_embedder(str(folder)), ServerSettings(served_name="c2v"))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=30)
        served = [d.embedding for d in client.embeddings.create(model="c2v", input=SENTENCES).data]
    assert cos_rows(served, want).min() >= 0.9999
    # the same texts in float32 are another embedding: exactly why one rule matters
    fp32 = Embedder.from_pretrained(folder, device="cpu", dtype="float32").encode(SENTENCES)
    if DEFAULT != "float32":
        assert cos_rows(fp32, want).min() < 0.99999


def test_an_output_file_records_its_precision(folder, tmp_path, capsys):
    out = tmp_path / "v.npy"
    assert main(["embed", "--model", str(folder), "--output", str(out), *SENTENCES[:2]]) == 0
    facts = json.loads(sidecar_path(out).read_text())
    assert facts["dtype"] == DEFAULT and facts["quantize"] is None and facts["embedding_dim"] == 64
    assert facts["model"] == str(folder) and facts["normalized"] is True
    assert main(["embed", "--model", str(folder), "--dtype", "fp32", "--output", str(out), *SENTENCES[:2]]) == 0
    assert json.loads(sidecar_path(out).read_text())["dtype"] == "float32"


def test_a_sentence_transformers_save_loads_in_the_api_and_the_cli(folder, api, tmp_path, capsys):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    model.save(str(tmp_path / "st"))
    assert not (tmp_path / "st" / "dec2vec.json").exists()  # sub-folders per module: 0_Dec2VecModule/ ...
    want = api.encode(SENTENCES)
    again = Embedder.from_pretrained(tmp_path / "st", device="cpu")
    assert again.config.recipe == "causal2vec"
    assert cos_rows(again.encode(SENTENCES), want).min() >= 0.9999
    assert cos_rows(cli_vectors(capsys, "--model", tmp_path / "st", *SENTENCES), want).min() >= 0.9999
    # and back: the folder sentence-transformers wrote loads there too, with the same vectors
    reloaded = st.SentenceTransformer(str(tmp_path / "st"), trust_remote_code=True, device="cpu")
    assert cos_rows(reloaded.encode(SENTENCES), want).min() >= 0.9999


def test_saved_prompts_travel_with_the_model(folder, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    emb = Embedder.from_pretrained(folder, device="cpu", dtype="float32")
    emb.prompts = {"query": "find the animal", "document": ""}
    emb.save_pretrained(tmp_path / "p")
    loaded = Embedder.from_pretrained(tmp_path / "p", device="cpu")
    assert loaded.prompts == emb.prompts
    model = st.SentenceTransformer(str(tmp_path / "p"), trust_remote_code=True, device="cpu")
    assert model.prompts == emb.prompts
    want = loaded.encode(SENTENCES[:2], instruction="find the animal")
    assert cos_rows(model.encode(SENTENCES[:2], prompt_name="query"), want).min() >= 0.9999
