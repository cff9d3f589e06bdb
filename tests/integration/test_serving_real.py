"""``dec2vec serve`` as a real process on the real default model, used through the openai client."""

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import openai
import pytest

from dec2vec import Embedder
from tests.conftest import cos_rows
from tests.integration.test_real_models import TEXTS

pytestmark = pytest.mark.integration

KEY = "integration-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    exe = shutil.which("dec2vec", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "dec2vec.cli"]
    cmd += ["serve", "--model", "mean", "--device", "cpu", "--dtype", "float32", "--port", str(port)]
    cmd += ["--no-access-log", "--batch-wait-ms", "20", "--threads", "1"]  # 2 shared cores: no oversubscription
    env = {**os.environ, "DEC2VEC_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dec2vec serve exited with {proc.returncode}:\n{proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("dec2vec serve did not answer /health within 180 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_cli_server_matches_encode_on_the_real_model(server, one_thread):
    ref = Embedder.from_recipe("mean", device="cpu", dtype="float32")
    want = ref.encode(TEXTS)
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120)
    got = client.embeddings.create(model="mean", input=TEXTS)  # base64 on the wire, decoded by the client
    assert len(got.data) == 4 and len(got.data[0].embedding) == 576
    assert cos_rows([d.embedding for d in got.data], want).min() >= 0.9999
    assert got.usage.prompt_tokens == sum(len(lay.ids) for lay in ref.layouts(TEXTS))
    floats = client.embeddings.create(model="mean", input=TEXTS[:2], encoding_format="float")
    assert cos_rows([d.embedding for d in floats.data], want[:2]).min() >= 0.9999
    short = client.embeddings.create(model="mean", input=TEXTS, dimensions=64)
    raw = ref.encode(TEXTS, normalize=False)[:, :64]
    assert cos_rows([d.embedding for d in short.data], raw).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm([d.embedding for d in short.data], axis=1), 1.0, atol=1e-5)
    info = httpx.get(f"{server}/info", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert info["embedding_dim"] == 576 and info["max_length"] == 512 and info["limits"]["auth"] is True
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="nope", max_retries=0).embeddings.create(model="mean", input="x")
