"""Errors as HTTP answers: one JSON shape (OpenAI's) for every failure, 4xx for the client's, 5xx for ours.

FastAPI's own 422 body (a list of pydantic errors) is replaced by a 400 whose message names the
field and item that was wrong, so a client sees ``input[3] is empty or whitespace-only``, not a
loc tuple.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("dec2vec.serving")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    503: "overloaded_error",
}


class APIError(Exception):
    """A failure to send back as ``{"error": {message, type, param, code}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _param(loc: Sequence[Any]) -> str | None:
    """('body', 'input', 3) -> 'input[3]'; None for the body as a whole."""
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or None


def validation_error(errors: Sequence[dict[str, Any]], known_fields: Sequence[str] = ()) -> APIError:
    """One 400 for a pydantic/FastAPI validation failure, worded for the client; the first error wins."""
    if not errors:
        return APIError(400, "the request is invalid")
    err = errors[0]
    kind, loc, ctx = err.get("type", ""), tuple(err.get("loc", ())), err.get("ctx") or {}
    param = ctx.get("param") if isinstance(ctx.get("param"), str) else _param(loc)
    if kind == "json_invalid":
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        detail = ctx.get("error", "not valid JSON")
        return APIError(400, f"malformed JSON body{where}: {detail}", code="invalid_json")
    if kind == "missing" and param is None:
        return APIError(400, "the request body is missing: send a JSON object", code="missing_body")
    if kind == "missing":
        return APIError(400, f"required field '{param}' is missing", param=param, code="missing_field")
    if kind == "extra_forbidden":
        known = f"; known fields: {', '.join(known_fields)}" if known_fields else ""
        return APIError(400, f"unknown field '{param}'{known}", param=param, code="unknown_field")
    if kind == "model_attributes_type" or (kind.endswith("_type") and param is None):
        return APIError(400, "the request body must be a JSON object", code="invalid_body")
    if kind == "invalid_input":
        return APIError(400, str(ctx.get("message", err.get("msg", ""))), param=param, code="invalid_input")
    msg = re.sub(r"^(Value error|Assertion failed), ", "", str(err.get("msg", "invalid value")))
    received = f" (got {_short(err['input'])})" if "input" in err and kind != "missing" else ""
    return APIError(400, f"{param or 'body'}: {msg}{received}", param=param, code="invalid_value")


def _short(value: Any) -> str:
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def install_handlers(app: FastAPI, known_fields: dict[str, Sequence[str]]) -> None:
    """Route every error through :class:`APIError`; ``known_fields`` (by path) feeds unknown-field messages."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc.errors(), known_fields.get(request.url.path, ())).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see GET /openapi.json"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 400:  # FastAPI could not even decode the body (e.g. bytes that are not UTF-8)
            message = f"could not parse the request body ({exc.detail}): send UTF-8 JSON"
        else:
            message = str(exc.detail)
        return APIError(exc.status_code, message, headers=getattr(exc, "headers", None)).response()

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return APIError(500, "internal server error; the server log has the details", type="server_error").response()
