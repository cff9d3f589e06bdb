"""``dec2vec serve`` on a tiny model: a live uvicorn server driven by the openai client and httpx."""

import base64
import json
import re
import threading

import httpx
import numpy as np
import openai
import pytest
import torch

from dec2vec import Embedder, TruncationWarning
from dec2vec.cli import main
from dec2vec.device import default_max_tokens
from dec2vec.serving.app import create_app, resolve_settings
from dec2vec.serving.batcher import Batcher, Overloaded, Stopped
from dec2vec.serving.server import BackgroundServer
from dec2vec.serving.settings import CPU_MERGE_BATCHES, ServerSettings, default_batch_tokens
from tests.conftest import SENTENCES, cos_rows

pytestmark = pytest.mark.usefixtures("one_thread_module")

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
LONG = "the quick brown fox jumps over the lazy dog " * 6  # ~55 tokens, over the limited server's 16


@pytest.fixture(scope="module")
def ref(tiny_backbone):
    """The reference: the library's own encode, on an embedder the server does not share."""
    return Embedder.from_recipe("mean", tiny_backbone, device="cpu")


@pytest.fixture(scope="module")
def live(tiny_backbone):
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    app = create_app(emb, ServerSettings(served_name="tiny", api_key=KEY, max_inputs=8, batch_wait_ms=50))
    with BackgroundServer(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def limited(tiny_backbone):
    """No API key; 16 tokens per input, rejected by default; a 2 kB body cap."""
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    settings = ServerSettings(max_tokens_per_input=16, truncate=False, max_body_bytes=2048)
    with BackgroundServer(create_app(emb, settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=f"{live[0]}/v1", api_key=KEY, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def http(live):
    with httpx.Client(base_url=live[0], headers=AUTH, timeout=30) as c:
        yield c


def test_openai_client_matches_encode(client, ref):
    want = ref.encode(SENTENCES)
    got = client.embeddings.create(model="tiny", input=SENTENCES)  # the client asks for base64 and decodes it
    assert [d.index for d in got.data] == list(range(len(SENTENCES))) and got.model == "tiny"
    assert cos_rows([d.embedding for d in got.data], want).min() >= 0.9999
    tokens = sum(len(lay.ids) for lay in ref.layouts(SENTENCES))
    assert got.usage.prompt_tokens == got.usage.total_tokens == tokens
    floats = client.embeddings.create(model="tiny", input=SENTENCES, encoding_format="float")
    np.testing.assert_allclose([d.embedding for d in floats.data], want, atol=1e-6)
    raw = client.embeddings.create(model="tiny", input=SENTENCES[0], encoding_format="base64")
    assert isinstance(raw.data[0].embedding, str)
    decoded = np.frombuffer(base64.b64decode(raw.data[0].embedding), dtype="<f4")
    np.testing.assert_allclose(decoded, want[0], atol=1e-6)


def test_dimensions_keep_a_prefix_and_renormalise(client, ref):
    raw = ref.encode(SENTENCES, normalize=False)[:, :8]
    want = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    got = client.embeddings.create(model="tiny", input=SENTENCES, dimensions=8)
    vecs = np.array([d.embedding for d in got.data])
    assert vecs.shape == (len(SENTENCES), 8)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert cos_rows(vecs, want).min() >= 0.9999
    with pytest.raises(openai.BadRequestError, match="dimensions 33 is over the model's 32"):
        client.embeddings.create(model="tiny", input="a dog", dimensions=33)


def test_openai_client_errors(client, live):
    with pytest.raises(openai.NotFoundError, match="model 'gpt-x' is not served here"):
        client.embeddings.create(model="gpt-x", input="a dog")
    with pytest.raises(openai.BadRequestError, match=r"input\[1\] is empty"):
        client.embeddings.create(model="tiny", input=["a dog", "  "])
    bad = openai.OpenAI(base_url=f"{live[0]}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        bad.embeddings.create(model="tiny", input="a dog")


def test_tei_embed(http, ref):
    r = http.post("/embed", json={"inputs": SENTENCES, "normalize": False})
    assert r.status_code == 200
    np.testing.assert_allclose(r.json(), ref.encode(SENTENCES, normalize=False), rtol=1e-5, atol=1e-5)
    r = http.post("/embed", json={"inputs": "a dog runs", "dimensions": 4})
    assert r.status_code == 200 and len(r.json()) == 1 and len(r.json()[0]) == 4
    assert abs(np.linalg.norm(r.json()[0]) - 1) < 1e-5


def test_instruction_extension(http, ref):
    r = http.post("/v1/embeddings", json={"input": ["the cat"], "instruction": "find animals"})
    want = ref.encode(["the cat"], instruction="find animals")
    assert r.status_code == 200 and cos_rows([r.json()["data"][0]["embedding"]], want)[0] >= 0.9999
    assert cos_rows([r.json()["data"][0]["embedding"]], ref.encode(["the cat"]))[0] < 0.9999


@pytest.mark.parametrize(
    "body,param,message",
    [
        ({"input": ""}, "input", "input is empty"),
        ({"input": []}, "input", "input is an empty list"),
        ({"input": ["ok", 3]}, "input[1]", "input[1] must be a string like input[0], got a number"),
        ({"input": ["ok", None]}, "input[1]", "input[1] must be a string like input[0], got null"),
        ({"input": [[1, 2], "ok"]}, "input[1]", "input[1] must be a token array like input[0], got a string"),
        ({"input": [[1, -2]]}, "input[0][1]", "input[0][1] must be a token id (an integer >= 0), got -2"),
        ({"input": [5, True]}, "input[1]", "input[1] must be a token id (an integer >= 0), got true"),
        ({"input": [[]]}, "input[0]", "input[0] is an empty token array"),
        ({"input": {"text": "x"}}, "input", "input must be a string, a list of strings or token ids, got an object"),
        ({"model": "tiny"}, "input", "required field 'input' is missing"),
        ({"input": "x", "dimensions": "8"}, "dimensions", "dimensions: Input should be a valid integer"),
        ({"input": "x", "dimensions": 0}, "dimensions", "greater than or equal to 1"),
        ({"input": "x", "encoding_format": "hex"}, "encoding_format", "'float' or 'base64'"),
        ({"input": "x", "inputs": "y"}, "inputs", "unknown field 'inputs'; known fields: input, model"),
        ({"input": ["a"] * 9}, "input", "input has 9 texts, over the server's limit of 8"),
    ],
)
def test_bad_requests_get_400_naming_the_field(http, body, param, message):
    r = http.post("/v1/embeddings", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and message in err["message"] and err["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "content,message",
    [
        (b'{"input": "x",', "malformed JSON body"),
        (b"", "the request body is missing"),
        (b'["x"]', "the request body must be a JSON object"),
        (b'"x"', "the request body must be a JSON object"),
        (b"\xadC", "could not parse the request body"),
    ],
)
def test_unparseable_bodies(http, content, message):
    r = http.post("/v1/embeddings", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and message in r.json()["error"]["message"], r.text


def test_tei_limits_are_413(http):
    r = http.post("/embed", json={"inputs": ["a"] * 9})
    assert r.status_code == 413 and "over the server's limit of 8" in r.json()["error"]["message"]
    r = http.post("/embed", json={"inputs": "x", "truncation_direction": "Left"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "truncation_direction"


def test_too_long_rejected_or_truncated(limited, ref):
    c = httpx.Client(base_url=limited, timeout=30)
    r = c.post("/v1/embeddings", json={"input": ["a dog", LONG]})  # this server rejects by default
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "input[1]" and err["code"] == "input_too_long"
    assert re.search(r"input\[1\]: \d+ tokens .* exceed max_length 16", err["message"])
    r = c.post("/embed", json={"inputs": LONG})
    assert r.status_code == 413 and r.json()["error"]["param"] == "inputs"
    r = c.post("/v1/embeddings", json={"input": ["a dog", LONG], "truncate": True})
    assert r.status_code == 200 and r.headers["X-Truncated-Inputs"] == "1"
    assert r.json()["usage"]["prompt_tokens"] == len(ref.layouts(["a dog"])[0].ids) + 16
    ref_limited = Embedder.from_recipe("mean", ref.config.backbone, device="cpu")
    ref_limited.max_length = 16
    with pytest.warns(TruncationWarning):
        want = ref_limited.encode([LONG], truncate=True)
    assert cos_rows([r.json()["data"][1]["embedding"]], want)[0] >= 0.9999


def test_body_cap(limited):
    c = httpx.Client(base_url=limited, timeout=30)
    r = c.post("/embed", json={"inputs": ["a dog"] * 400})  # > 2048 bytes, with a Content-Length
    assert r.status_code == 413 and "over the server's limit of 2048 bytes" in r.json()["error"]["message"]
    chunks = (b'{"inputs": [' + b'"a dog",' * 300 + b'"x"]}',)
    r = c.post("/embed", content=iter(chunks), headers={"Content-Type": "application/json"})  # chunked: no length
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_auth(live):
    url = live[0]
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}  # open
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {KEY}"}):
        for method, path in (("POST", "/v1/embeddings"), ("GET", "/metrics"), ("GET", "/info"), ("GET", "/docs")):
            r = httpx.request(method, f"{url}{path}", headers=headers, json={"input": "x"})
            assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error", (headers, path)
    info = httpx.get(f"{url}/info", headers=AUTH).json()
    assert info["embedding_dim"] == 32 and info["limits"]["auth"] is True and KEY not in json.dumps(info)


def test_concurrent_clients_are_merged_and_get_their_own_rows(live, ref):
    url, app = live
    texts = [
        [f"{w} {v} sat on the mat" for v in ("cat", "dog", "bird")[: 1 + i % 3]]
        for i, w in enumerate(
            [
                "the",
                "a",
                "big",
                "small",
                "old",
                "new",
                "quick",
                "lazy",
                "red",
                "blue",
                "green",
                "brown",
                "sun",
                "moon",
                "star",
                "tree",
            ]
        )
    ]
    calls_before = app.state.batcher.calls
    barrier = threading.Barrier(len(texts))
    results: list = [None] * len(texts)

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as c:
            barrier.wait()
            results[i] = c.post("/v1/embeddings", json={"input": texts[i]})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        assert r.status_code == 200
        got = [d["embedding"] for d in r.json()["data"]]
        assert cos_rows(got, ref.encode(texts[i])).min() >= 0.9999  # its own rows, in its own order
    calls = app.state.batcher.calls - calls_before
    assert 1 <= calls < len(texts), calls  # merged: fewer model calls than requests


def test_metrics(http):
    http.post("/v1/embeddings", json={"input": ["a dog", "the cat"]})
    http.post("/v1/embeddings", json={"input": ""})
    text = http.get("/metrics").text
    assert re.search(r'dec2vec_requests_total\{route="/v1/embeddings",status="200"\} [1-9]', text)
    assert re.search(r'dec2vec_requests_total\{route="/v1/embeddings",status="400"\} [1-9]', text)
    for name in ("dec2vec_request_seconds_bucket", "dec2vec_batch_requests_bucket", "dec2vec_batch_tokens_sum"):
        assert name in text
    assert re.search(r"^dec2vec_queue_depth 0\.0$", text, re.M)
    assert float(re.search(r"^dec2vec_texts_embedded_total (\S+)$", text, re.M).group(1)) >= 2
    calls = float(re.search(r"^dec2vec_model_calls_total (\S+)$", text, re.M).group(1))
    assert calls >= 1


def test_models_list(client):
    assert [m.id for m in client.models.list().data] == ["tiny"]


def test_batcher_merges_what_waits_and_fails_bad_requests_alone(tiny_backbone, ref):
    emb = Embedder.from_recipe("mean", tiny_backbone, device="cpu")
    emb.max_length = 16
    batcher = Batcher(emb, batch_tokens=10_000, wait_s=0.0)
    jobs = [["the cat", "a dog runs"], ["blue sky"], [LONG], SENTENCES[:2]]
    futures = [batcher.submit(t, truncate=(t != [LONG])) for t in jobs]  # all queued before the worker starts
    batcher.start()
    try:
        with pytest.raises(Exception, match="exceed max_length 16"):
            futures[2].result(timeout=30)
        for f, t in zip(futures, jobs, strict=True):
            if t != [LONG]:
                got = f.result(timeout=30)
                assert got.vectors.shape == (len(t), 32) and got.tokens == sum(len(x.ids) for x in emb.layouts(t))
                assert cos_rows(got.vectors, ref.encode(t, normalize=False)).min() >= 0.9999
        assert batcher.calls == 1  # three good requests, one model call
        small = Batcher(emb, batch_tokens=5, wait_s=0.0)  # 4 tokens each: a budget that fits one at a time
        futures = [small.submit(t) for t in (["the cat sat"], ["a dog runs"], ["blue sky"])]
        small.start()
        [f.result(timeout=30) for f in futures]
        assert small.calls == 3
        small.stop()
    finally:
        batcher.stop()


def test_merge_budget_defaults_per_device_type(ref):
    """On CPU a merge spans several of the engine's small forward batches (one starved the server: 57 % of
    encode); on accelerators, whose forward batch is already large, one. A flag or setting wins."""
    cpu, cuda, mps = (torch.device(d) for d in ("cpu", "cuda", "mps"))
    assert CPU_MERGE_BATCHES > 1
    assert default_batch_tokens(cpu) == CPU_MERGE_BATCHES * default_max_tokens(cpu) == 8192
    assert default_batch_tokens(torch.device("cpu", 0)) == 8192  # the type decides, not the index
    assert default_batch_tokens(cuda) == default_max_tokens(cuda) == 32768
    assert default_batch_tokens(mps) == default_max_tokens(mps) == 16384
    assert resolve_settings(ref, ServerSettings()).batch_tokens == 8192  # the tiny model on CPU: no model names
    assert resolve_settings(ref, ServerSettings(batch_tokens=1024)).batch_tokens == 1024


def test_batcher_refuses_when_full_or_stopped(ref):
    batcher = Batcher(ref, batch_tokens=1024, wait_s=0.0, max_queue=2)
    waiting = [batcher.submit(["a dog"]), batcher.submit(["the cat"])]  # not started: they wait
    with pytest.raises(Overloaded, match="2 requests are already waiting"):
        batcher.submit(["blue sky"])
    batcher.stop()
    for f in waiting:
        with pytest.raises(Stopped):
            f.result(timeout=5)
    with pytest.raises(Stopped):
        batcher.submit(["a dog"])


def test_cli_refuses_bad_settings_before_serving(tiny_backbone, tmp_path, capsys):
    folder = tmp_path / "tiny-mean"
    Embedder.from_recipe("mean", tiny_backbone, device="cpu").save_pretrained(folder)
    code = main(["serve", "--model", str(folder), "--max-tokens-per-input", "100000", "--port", "0"])
    assert code == 2 and "over the model's max_length 512" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--model", str(folder), "--max-inputs", "0"])
    assert "expected a positive integer" in capsys.readouterr().err
