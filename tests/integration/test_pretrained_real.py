"""The default model (shipped): trained Causal2Vec parts on the registry SmolLM2 and MiniLM, offline."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dec2vec import Embedder, pretrained

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def default():
    return Embedder.from_pretrained(pretrained.DEFAULT_MODEL, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def at_defaults():
    """The default model as the API loads it with no flags: the dtype every entry point defaults to."""
    return Embedder.from_pretrained(pretrained.DEFAULT_MODEL, device="cpu")


@pytest.fixture(scope="module")
def reference():
    return json.loads((pretrained.path(pretrained.DEFAULT_MODEL) / "reference.json").read_text())


def test_default_model_is_slim_and_documented():
    folder = pretrained.path(pretrained.DEFAULT_MODEL)
    assert not (folder / "backbone").exists() and not (folder / "encoder").exists()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size < 40e6  # the adapter and projector only; the base weights come from registry packages
    card = (folder / "README.md").read_text()
    for section in ("## Training data", "## Scores", "## Limits"):
        assert section in card


def test_default_model_reproduces_the_trained_run(default, reference):
    """Same embeddings as the full run folder gave when it was shipped (scripts/ship_default.py)."""
    assert default.config.recipe == "causal2vec" and default.recipe.options.pooling == "eos+encoder"
    assert default.embedding_dim == 576 + 384  # h_eos beside MiniLM's own vector
    got = default.encode(reference["texts"])
    want = np.asarray(reference["embeddings"], dtype=np.float32)
    np.testing.assert_allclose(got, want, atol=2e-4)
    q = reference["query"]
    got_q = default.encode([q["text"]], instruction=q["instruction"])[0]
    np.testing.assert_allclose(got_q, np.asarray(reference["query_embedding"]), atol=2e-4)


def test_cli_embed_uses_the_default_model(default):
    out = subprocess.run(
        [sys.executable, "-m", "dec2vec", "embed", "Penguins cannot fly."],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    vec = np.asarray(json.loads(out.strip().splitlines()[-1]), dtype=np.float32).ravel()
    # the CLI loads in its default inference dtype (bf16 on CPUs that run it natively)
    from dec2vec.device import inference_dtype

    dtype = inference_dtype(None, None, "cpu")
    same = default if dtype is None else Embedder.from_pretrained(pretrained.DEFAULT_MODEL, device="cpu", dtype=dtype)
    np.testing.assert_allclose(vec, same.encode(["Penguins cannot fly."])[0], atol=1e-4)
    assert float(vec @ default.encode(["Penguins cannot fly."])[0]) > 0.99  # and close to float32's


def test_sentence_transformers_gives_the_same_unit_vectors(at_defaults):
    """Loaded with SentenceTransformer the default model gave unnormalised rows (norms 37-70, issue 18)."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(pretrained.path(pretrained.DEFAULT_MODEL)), trust_remote_code=True, device="cpu")
    texts = ["Penguins cannot fly.", "The Eiffel Tower is in Paris."]
    got = st.encode(texts)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(got, at_defaults.encode(texts), atol=1e-4)
    query = st.encode(texts[:1], prompt_name="query")  # the shipped prompts: the model card's instruction
    want = at_defaults.encode(texts[:1], instruction=at_defaults.prompts["query"])
    np.testing.assert_allclose(query, want, atol=1e-4)


def test_server_cli_and_api_agree_at_default_flags(at_defaults, capsys):
    """docs/SERVING.md's claim as stated: with no flags anywhere, the same vectors (issue 28)."""
    import openai

    from dec2vec.cli import main
    from dec2vec.serving.app import create_app
    from dec2vec.serving.server import BackgroundServer
    from dec2vec.text_embedders import load_text_embedder

    texts = [*_demo_module().CORPUS[:4], "Penguins cannot fly."]
    want = at_defaults.encode(texts)

    def cos(a):
        a = np.asarray(a, dtype=np.float64)
        return float(((a * want).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(want, axis=1)).min())

    assert main(["embed", "--json", *texts]) == 0
    assert cos(json.loads(capsys.readouterr().out)) >= 0.9999
    from dec2vec.serving.settings import ServerSettings

    app = create_app(load_text_embedder(pretrained.DEFAULT_MODEL), ServerSettings(served_name=pretrained.DEFAULT_MODEL))
    with BackgroundServer(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=300)
        served = client.embeddings.create(model=pretrained.DEFAULT_MODEL, input=texts)
    assert cos([d.embedding for d in served.data]) >= 0.9999


def _demo_module():
    """examples/demo.py's corpus and queries: the test checks what `make demo` shows a new user."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "demo.py"
    spec = importlib.util.spec_from_file_location("dec2vec_demo", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_model_ranks_the_demo_queries_right(default):
    """The default model must find the answer to each of `make demo`'s queries first, and score each
    paraphrase pair above the unrelated pair: the first thing a new user sees."""
    demo = _demo_module()
    docs = default.encode(demo.CORPUS)
    qs = default.encode(demo.QUERIES, instruction="Given a question, retrieve the passage that answers it")
    assert list((qs @ docs.T).argmax(1)) == list(demo.GOLD)
    sims = [float(a @ b) for a, b in (default.encode(list(p)) for p in demo.PAIRS)]
    assert min(sims[:2]) > sims[2], sims  # the last pair is the unrelated one


def test_int8_on_the_default_model_keeps_the_outlier_layers_float(default):
    """The crest rule fires on the real weights: most layers int8, the outlier ones float, vectors close."""
    texts = ["Penguins cannot fly.", "The Eiffel Tower is in Paris.", "Shares fell after the forecast was cut."]
    q = Embedder.from_pretrained(pretrained.DEFAULT_MODEL, device="cpu", quantize="int8")
    rep = q.quantization
    assert len(rep.quantized) > 150 and 10 < len(rep.kept_float) < 100  # 204 and 45 when measured
    assert all(c >= rep.max_crest for c in rep.kept_float.values())  # (kept to one decimal)
    cos = np.sum(q.encode(texts) * default.encode(texts), axis=1)
    assert cos.min() > 0.9, cos
