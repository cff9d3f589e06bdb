"""The FastAPI app: OpenAI ``/v1/embeddings`` and ``/v1/models``, TEI ``/embed``, ``/health``, ``/info``, ``/metrics``.

``create_app(embedder, settings)`` builds it around a loaded :class:`~dec2vec.Embedder` or a
registry encoder (:class:`~dec2vec.encoder_only.EncoderOnlyEmbedder`, e.g. all-MiniLM-L6-v2); the
CLI (``dec2vec serve``) and the tests both use it, so what the tests check is what runs.
"""

import asyncio
import copy
import dataclasses
import platform
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from .. import __version__
from ..encoder_only import instruction_refusal, is_encoder_only
from ..errors import ConfigError, InputError, TruncationError
from ..text_embedders import TextEmbedder
from .batcher import Batcher, Overloaded, Result, Stopped
from .errors import APIError, install_handlers
from .inputs import instruction_for, request_texts, vocab_size
from .metrics import Metrics
from .middleware import AuthMiddleware, BodyLimitMiddleware, MetricsMiddleware
from .schemas import EmbeddingRequest, EmbeddingResponse, EmbedRequest, ErrorBody, Health, ModelCard, ModelList
from .settings import ServerSettings, default_batch_tokens
from .vectors import shape_vectors, to_base64

ROUTES = frozenset({"/v1/embeddings", "/embed", "/health", "/info", "/metrics", "/v1/models"})  # metric labels
_ERRORS = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "Invalid request (the message names the field and item)",
        401: "Missing or invalid API key",
        404: "Unknown model name",
        413: "Body, input count or input length over the server's limits",
        503: "Queue full or shutting down; retry later",
    }.items()
}


def resolve_settings(embedder: TextEmbedder, settings: ServerSettings) -> ServerSettings:
    """Fill the model-dependent defaults; a per-input token limit above the model's is a ConfigError."""
    limit = settings.max_tokens_per_input or embedder.max_length
    if limit > embedder.max_length:
        raise ConfigError(
            f"max_tokens_per_input {limit} is over the model's max_length {embedder.max_length}; it can only lower it"
        )
    return dataclasses.replace(
        settings,
        served_name=settings.served_name or (embedder.name if is_encoder_only(embedder) else embedder.config.recipe),
        max_tokens_per_input=limit,
        batch_tokens=settings.batch_tokens or default_batch_tokens(embedder.device),
    )


def create_app(embedder: TextEmbedder, settings: ServerSettings | None = None) -> FastAPI:
    """An ASGI app serving ``embedder``; it takes ownership (its ``max_length`` becomes the per-input limit).

    Serve it with uvicorn (``dec2vec serve`` does), or :class:`~dec2vec.serving.server.BackgroundServer`.
    """
    s = resolve_settings(embedder, settings or ServerSettings())
    embedder.max_length = s.max_tokens_per_input  # the limit layouts() cuts or rejects at
    dim = embedder.embedding_dim
    batcher: Batcher
    metrics = Metrics(queue_depth=lambda: batcher.depth)
    batcher = Batcher(
        embedder, batch_tokens=s.batch_tokens, wait_s=s.batch_wait_ms / 1000, max_queue=s.max_queue, metrics=metrics
    )
    started = int(time.time())
    prompts: dict[str, str] = dict(getattr(embedder, "prompts", {}))
    # token-id inputs are decoded on the event loop; the batcher's thread owns the model's tokenizer
    # (a fast tokenizer is not safe to drive from two threads), so the loop gets its own copy
    id_tokenizer = copy.deepcopy(embedder.tokenizer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await asyncio.to_thread(batcher.stop)

    app = FastAPI(
        title="dec2vec embedding server",
        version=__version__,
        description="OpenAI- and TEI-compatible text embeddings from a decoder-only LLM (or a registry encoder), "
        "with dynamic batching.",
        lifespan=lifespan,
    )
    app.state.batcher, app.state.metrics, app.state.settings, app.state.embedder = batcher, metrics, s, embedder
    install_handlers(
        app, {"/v1/embeddings": list(EmbeddingRequest.model_fields), "/embed": list(EmbedRequest.model_fields)}
    )

    async def run(
        texts: list[str], field: str, single: bool, instruction: str | None, truncate: bool, big: int
    ) -> Result:
        """Texts through the batcher; errors become APIErrors naming ``field[i]`` (``big``: status for limits)."""
        if len(texts) > s.max_inputs:
            raise APIError(
                big,
                f"{field} has {len(texts)} texts, over the server's limit of {s.max_inputs} per request; split it",
                param=field,
                code="too_many_inputs",
            )
        if instruction and is_encoder_only(embedder):
            raise APIError(
                400,
                f"instruction: {instruction_refusal(repr(s.served_name))}",
                param="instruction",
                code="invalid_value",
            )
        batcher.start()  # no-op once running; covers apps driven without their lifespan
        try:
            return await batcher.embed(texts, instruction, truncate)
        except (Overloaded, Stopped) as e:
            raise APIError(503, str(e), code="overloaded", headers={"Retry-After": "1"}) from None
        except InputError as e:
            param = field if single or e.index is None else f"{field}[{e.index}]"
            message = f"{param}: {re.sub(r'^item [0-9]+: ', '', str(e))}"
            if isinstance(e, TruncationError):
                message = message.replace("allow truncation", 'send "truncate": true')
                raise APIError(big, message, param=param, code="input_too_long") from None
            raise APIError(400, message, param=param, code="invalid_input") from None

    def check_dimensions(k: int | None) -> None:
        if k is not None and k > dim:
            raise APIError(
                400, f"dimensions {k} is over the model's {dim}; use 1..{dim}", param="dimensions", code="invalid_value"
            )

    def headers(result: Result) -> dict[str, str]:
        return {"X-Truncated-Inputs": ",".join(map(str, result.truncated))} if result.truncated else {}

    @app.post("/v1/embeddings", response_model=EmbeddingResponse, responses=_ERRORS, tags=["OpenAI"])
    async def embeddings(req: EmbeddingRequest) -> Response:
        """Embed text(s), OpenAI style: unit vectors, as floats or base64 float32."""
        if req.model is not None and req.model != s.served_name:
            raise APIError(
                404,
                f"model '{req.model}' is not served here; this server serves '{s.served_name}' (GET /v1/models)",
                param="model",
                code="model_not_found",
            )
        check_dimensions(req.dimensions)
        texts, single = request_texts(req.input, "input", id_tokenizer)
        instruction = instruction_for(prompts, req.prompt_name, req.instruction)
        truncate = s.truncate if req.truncate is None else req.truncate
        result = await run(texts, "input", single, instruction, truncate, big=400)
        vectors = shape_vectors(result.vectors, req.dimensions, normalize=True)  # (n, k)
        b64 = req.encoding_format == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": to_base64(v) if b64 else v.tolist()}
            for i, v in enumerate(vectors)
        ]
        body = {
            "object": "list",
            "data": data,
            "model": s.served_name,
            "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens},
        }
        return JSONResponse(body, headers=headers(result))

    @app.post("/embed", response_model=list[list[float]], responses=_ERRORS, tags=["TEI"])
    async def embed(req: EmbedRequest) -> Response:
        """Embed text(s), text-embeddings-inference style: a list of float lists."""
        check_dimensions(req.dimensions)
        texts, single = request_texts(req.inputs, "inputs", id_tokenizer)
        instruction = instruction_for(prompts, req.prompt_name, req.instruction)
        truncate = s.truncate if req.truncate is None else req.truncate
        result = await run(texts, "inputs", single, instruction, truncate, big=413)
        vectors = shape_vectors(result.vectors, req.dimensions, normalize=req.normalize)
        return JSONResponse(vectors.tolist(), headers=headers(result))

    @app.get("/health", response_model=Health, tags=["ops"])
    async def health() -> Response:
        """Liveness: 200 while the model worker can take requests (no API key needed)."""
        if batcher.stopping:
            raise APIError(503, "shutting down", code="overloaded")
        return JSONResponse({"status": "ok"})

    @app.get("/v1/models", response_model=ModelList, responses={401: _ERRORS[401]}, tags=["OpenAI"])
    async def models() -> ModelList:
        """The one served model, OpenAI style."""
        return ModelList(data=[ModelCard(id=s.served_name, created=started)])

    @app.get("/v1/models/{model_id:path}", response_model=ModelCard, responses=_ERRORS, tags=["OpenAI"])
    async def model(model_id: str) -> ModelCard:
        """The served model, OpenAI style (``client.models.retrieve``); 404 for any other id."""
        if model_id != s.served_name:
            raise APIError(
                404,
                f"model '{model_id}' is not served here; this server serves '{s.served_name}' (GET /v1/models)",
                param="model",
                code="model_not_found",
            )
        return ModelCard(id=s.served_name, created=started)

    @app.get("/info", responses={401: _ERRORS[401]}, tags=["ops"])
    async def info() -> dict[str, Any]:
        """Model, recipe, dimensions, limits and versions."""
        return server_info(embedder, s)

    @app.get("/metrics", response_class=PlainTextResponse, responses={401: _ERRORS[401]}, tags=["ops"])
    async def prometheus() -> Response:
        """Prometheus text format: requests, latency, merged batches, queue depth, texts embedded."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: _openapi(app, s)  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware, limit=s.max_body_bytes)  # innermost of the three
    if s.api_key is not None:
        app.add_middleware(AuthMiddleware, api_key=s.api_key)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=ROUTES)  # outermost: counts 401s and 413s too
    return app


def server_info(embedder: TextEmbedder, s: ServerSettings) -> dict[str, Any]:
    import fastapi
    import torch
    import transformers

    cfg = embedder.config
    return {
        "model": s.served_name,
        "recipe": cfg.recipe,
        "backbone": cfg.backbone,
        "encoder": cfg.encoder,
        "embedding_dim": embedder.embedding_dim,
        "max_length": embedder.max_length,
        "device": str(embedder.device),
        "dtype": str(embedder.dtype).removeprefix("torch."),
        "vocab_size": vocab_size(embedder.tokenizer),
        "prompts": dict(getattr(embedder, "prompts", {})),
        "quantize": q.mode if (q := getattr(embedder, "quantization", None)) else None,
        "limits": s.public(),
        "versions": {
            "dec2vec": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "fastapi": fastapi.__version__,
        },
    }


def _openapi(app: FastAPI, s: ServerSettings) -> dict[str, Any]:
    """FastAPI's schema, plus the bearer-key requirement when a key is set (``/health`` stays open)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        if s.api_key is not None:
            schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
            schema["paths"]["/health"]["get"]["security"] = []
        app.openapi_schema = schema
    return app.openapi_schema
