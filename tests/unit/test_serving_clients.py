"""The client libraries people already use, unmodified, against a live ``dec2vec serve`` on 127.0.0.1.

openai (sync and async), LangChain's ``OpenAIEmbeddings``, LlamaIndex's ``OpenAIEmbedding`` and
``OpenAILikeEmbedding``, and huggingface_hub's ``InferenceClient``, each with the settings
docs/SERVING.md gives; a tiny saved model, one server for the module, all offline. The packages
are in the dev extra; a test skips (saying which) only where one is not installed.
"""

import asyncio
import base64
import importlib.util

import numpy as np
import openai
import pytest

from dec2vec import Embedder
from dec2vec.serving.app import create_app
from dec2vec.serving.server import BackgroundServer
from dec2vec.serving.settings import ServerSettings
from dec2vec.text_embedders import load_text_embedder
from tests.conftest import SENTENCES, VOCAB, cos_rows

pytestmark = pytest.mark.usefixtures("one_thread_module")

KEY = "client-key"
NAME = "tiny"
PROMPTS = {"query": "find the animal", "document": ""}


def needs(module: str):
    missing = importlib.util.find_spec(module.split(".")[0]) is None
    return pytest.mark.skipif(missing, reason=f"{module} is not installed (it is in the dev extra)")


@pytest.fixture(scope="module")
def folder(tiny_backbone, tmp_path_factory):
    path = tmp_path_factory.mktemp("clients") / "tiny"
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    emb.prompts = dict(PROMPTS)
    emb.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ref(folder):
    """The API at its default flags: what every client must get back."""
    return Embedder.from_pretrained(folder, device="cpu")


@pytest.fixture(scope="module")
def url(folder):
    app = create_app(load_text_embedder(str(folder)), ServerSettings(served_name=NAME, api_key=KEY, batch_wait_ms=5))
    with BackgroundServer(app) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=30)


# ---- openai ---------------------------------------------------------------------------------------
def test_openai_sync_base64_dimensions_instruction(client, ref):
    want = ref.encode(SENTENCES)
    got = client.embeddings.create(model=NAME, input=SENTENCES)  # base64 on the wire, decoded by the client
    assert cos_rows([d.embedding for d in got.data], want).min() >= 0.9999
    raw = client.embeddings.create(model=NAME, input=SENTENCES[0], encoding_format="base64").data[0].embedding
    assert cos_rows([np.frombuffer(base64.b64decode(raw), dtype="<f4")], want[:1])[0] >= 0.9999
    short = client.embeddings.create(model=NAME, input=SENTENCES, dimensions=8).data
    assert all(len(d.embedding) == 8 for d in short)
    query = client.embeddings.create(model=NAME, input=SENTENCES[:2], extra_body={"instruction": "find the animal"})
    want_q = ref.encode(SENTENCES[:2], instruction="find the animal")
    assert cos_rows([d.embedding for d in query.data], want_q).min() >= 0.9999
    named = client.embeddings.create(model=NAME, input=SENTENCES[:2], extra_body={"prompt_name": "query"})
    assert cos_rows([d.embedding for d in named.data], want_q).min() >= 0.9999


def test_openai_async(url, ref):
    async def go():
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=30) as aclient:
            return await asyncio.gather(*(aclient.embeddings.create(model=NAME, input=[t]) for t in SENTENCES))

    rows = [r.data[0].embedding for r in asyncio.run(go())]
    assert cos_rows(rows, ref.encode(SENTENCES)).min() >= 0.9999


def test_openai_models_retrieve(client):
    assert [m.id for m in client.models.list()] == [NAME]
    card = client.models.retrieve(NAME)
    assert card.id == NAME and card.object == "model" and card.owned_by == "dec2vec"
    with pytest.raises(openai.NotFoundError, match="model 'text-embedding-3-small' is not served here"):
        client.models.retrieve("text-embedding-3-small")


def test_token_ids_of_the_served_tokenizer_embed_as_their_text(client, ref):
    """What pre-tokenizing clients send: ids of *this* model's tokenizer are decoded and embedded."""
    ids = [ref.tokenizer.encode(t, add_special_tokens=False) for t in SENTENCES]
    got = client.embeddings.create(model=NAME, input=ids)
    assert cos_rows([d.embedding for d in got.data], ref.encode(SENTENCES)).min() >= 0.9999
    one = client.embeddings.create(model=NAME, input=ids[0]).data  # one array is one input
    assert len(one) == 1 and cos_rows([one[0].embedding], ref.encode(SENTENCES[:1]))[0] >= 0.9999
    outside = rf"input\[1\]\[0\] is token id {VOCAB}, outside .*0\.\.{VOCAB - 1}"
    with pytest.raises(openai.BadRequestError, match=outside):
        client.embeddings.create(model=NAME, input=[ids[0], [VOCAB, 1]])


# ---- LangChain -----------------------------------------------------------------------------------
@needs("langchain_openai")
def test_langchain_with_ctx_length_check_off(url, ref):
    from langchain_openai import OpenAIEmbeddings

    lc = OpenAIEmbeddings(
        model=NAME, base_url=f"{url}/v1", api_key=KEY, check_embedding_ctx_length=False, max_retries=0
    )
    assert cos_rows(lc.embed_documents(SENTENCES), ref.encode(SENTENCES)).min() >= 0.9999
    assert cos_rows([lc.embed_query(SENTENCES[1])], ref.encode(SENTENCES[1:2]))[0] >= 0.9999


@needs("langchain_openai")
def test_langchain_ctx_length_check_with_the_served_tokenizer(url, ref, folder):
    """``tiktoken_enabled=False`` makes LangChain count and cut with a Hugging Face tokenizer (here the
    served one, as a folder) and send text: the same vectors, and no tiktoken download."""
    from langchain_openai import OpenAIEmbeddings

    lc = OpenAIEmbeddings(
        model=NAME,
        base_url=f"{url}/v1",
        api_key=KEY,
        tiktoken_enabled=False,
        tiktoken_model_name=str(folder / "backbone"),
        max_retries=0,
    )
    assert cos_rows(lc.embed_documents(SENTENCES), ref.encode(SENTENCES)).min() >= 0.9999


def test_ids_of_another_vocabulary_are_refused_or_mean_other_text(client, ref):
    """What LangChain's default sends (OpenAI tiktoken ids): outside this vocabulary, a 400 naming the id;
    inside it, the server cannot tell, and the ids are this tokenizer's other text. Hence the docs'
    ``check_embedding_ctx_length=False``."""
    with pytest.raises(openai.BadRequestError, match="outside the served model's vocabulary"):
        client.embeddings.create(model=NAME, input=[[791, 8415, 7731, 389, 279, 5634, 13]])  # cl100k: "The cat sat..."
    other = [[5, 6, 7]]  # valid ids here, another text than the client meant
    got = client.embeddings.create(model=NAME, input=other).data[0].embedding
    meant = ref.encode(["the cat sat"])[0]
    assert cos_rows([got], [meant])[0] < 0.9999


# ---- LlamaIndex ----------------------------------------------------------------------------------
@needs("llama_index.embeddings.openai")
def test_llamaindex_openai_embedding_takes_model_name(url, ref):
    from llama_index.embeddings.openai import OpenAIEmbedding

    li = OpenAIEmbedding(model_name=NAME, api_base=f"{url}/v1", api_key=KEY, max_retries=0)
    assert cos_rows(li.get_text_embedding_batch(SENTENCES), ref.encode(SENTENCES)).min() >= 0.9999
    assert cos_rows([li.get_query_embedding(SENTENCES[0])], ref.encode(SENTENCES[:1]))[0] >= 0.9999
    with pytest.raises(ValueError):  # model= is checked against OpenAI's own model names, in the client
        OpenAIEmbedding(model=NAME, api_base=f"{url}/v1", api_key=KEY)


@pytest.mark.skipif(
    importlib.util.find_spec("llama_index.embeddings.openai_like") is None
    if importlib.util.find_spec("llama_index") is not None
    else True,
    reason="llama-index-embeddings-openai-like is not installed (it is in the dev extra)",
)
def test_llamaindex_openai_like_embedding(url, ref):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    li = OpenAILikeEmbedding(model_name=NAME, api_base=f"{url}/v1", api_key=KEY, max_retries=0)
    assert cos_rows(li.get_text_embedding_batch(SENTENCES), ref.encode(SENTENCES)).min() >= 0.9999


# ---- huggingface_hub (TEI's /embed) --------------------------------------------------------------
@needs("huggingface_hub")
def test_huggingface_hub_feature_extraction_with_prompt_name(url, ref, monkeypatch):
    from huggingface_hub import InferenceClient, constants
    from huggingface_hub.errors import HfHubHTTPError

    # the suite runs with HF_HUB_OFFLINE=1, under which huggingface_hub refuses every URL, 127.0.0.1
    # included (docs/SERVING.md); this test reaches only the local server
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read directly by older huggingface_hub versions
    if hasattr(constants, "is_offline_mode"):
        monkeypatch.setattr(constants, "is_offline_mode", lambda: False)

    hf = InferenceClient(model=f"{url}/embed", token=KEY)
    plain = hf.feature_extraction(SENTENCES[0])
    assert plain.shape == (1, ref.embedding_dim)
    assert cos_rows(plain, ref.encode(SENTENCES[:1]))[0] >= 0.9999
    query = hf.feature_extraction(SENTENCES[1], prompt_name="query", normalize=True, truncate=True)
    assert cos_rows(query, ref.encode(SENTENCES[1:2], instruction=PROMPTS["query"]))[0] >= 0.9999
    document = hf.feature_extraction(SENTENCES[1], prompt_name="document")  # an empty prompt: no instruction
    assert cos_rows(document, ref.encode(SENTENCES[1:2]))[0] >= 0.9999
    with pytest.raises(HfHubHTTPError, match=r"prompt_name 'passage' is not one of .* \(known: document, query\)") as e:
        hf.feature_extraction(SENTENCES[1], prompt_name="passage")
    assert e.value.response.status_code == 400


# ---- TEI /embed with token ids and prompt names, over plain HTTP -------------------------------------
def test_tei_embed_takes_token_ids_and_prompt_names(url, ref):
    import httpx

    ids = [ref.tokenizer.encode(t, add_special_tokens=False) for t in SENTENCES[:2]]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        r = http.post("/embed", json={"inputs": ids})
        assert r.status_code == 200 and cos_rows(r.json(), ref.encode(SENTENCES[:2])).min() >= 0.9999
        r = http.post("/embed", json={"inputs": ids[0], "prompt_name": "query"})
        want = ref.encode(SENTENCES[:1], instruction=PROMPTS["query"])
        assert r.status_code == 200 and cos_rows(r.json(), want)[0] >= 0.9999
        r = http.post("/embed", json={"inputs": [ids[0], [VOCAB + 7]]})
        assert r.status_code == 400 and r.json()["error"]["param"] == "inputs[1][0]"
        r = http.post("/embed", json={"inputs": "a dog", "prompt_name": "query", "instruction": "x"})
        assert r.status_code == 400 and "not both" in r.json()["error"]["message"]
        r = http.post("/embed", json={"inputs": [[1, 2, 3]]})  # <s> </s> <pad>: nothing left to embed
        assert r.status_code == 400 and "decode to empty text" in r.json()["error"]["message"]
        info = http.get("/info").json()
        assert info["vocab_size"] == VOCAB and info["prompts"] == PROMPTS
        r = http.get("/v1/models/other")
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
