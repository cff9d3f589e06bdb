"""The ``dec2vec serve`` subcommand (imports FastAPI, uvicorn and the model only when run)."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket
import sys
from pathlib import Path

from ..argtypes import add_precision_args, device, positive_int
from ..errors import ConfigError, Dec2VecError
from ..pretrained import DEFAULT_MODEL

API_KEY_ENV = "DEC2VEC_API_KEY"


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of milliseconds, got '{text}'") from None
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected 0..10000 milliseconds, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    from .settings import DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INPUTS, DEFAULT_MAX_QUEUE

    sp = sub.add_parser(
        "serve",
        help="serve a model over HTTP: OpenAI /v1/embeddings and TEI /embed, with dynamic batching",
        description="An OpenAI- and TEI-compatible embedding server (needs the extra: pip install 'dec2vec[serve]'). "
        "Loads safetensors weights only; never runs code from the model folder.",
    )
    sp.add_argument(
        "--model",
        "-m",
        default=DEFAULT_MODEL,
        help=f"a shipped model, a recipe name, a saved dec2vec folder or a registry encoder like all-minilm-l6-v2 "
        f"(default: {DEFAULT_MODEL}, trained)",
    )
    sp.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    add_precision_args(sp)
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    sp.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    sp.add_argument(
        "--api-key", default=None, help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV} if set)"
    )
    sp.add_argument("--served-name", default=None, help="the model name clients send (default: the --model value)")
    sp.add_argument(
        "--max-inputs", type=positive_int, default=DEFAULT_MAX_INPUTS, help="texts per request (default: %(default)s)"
    )
    sp.add_argument(
        "--max-tokens-per-input",
        type=positive_int,
        default=None,
        help="tokens per text (default: the model's max_length)",
    )
    trunc = sp.add_mutually_exclusive_group()
    trunc.add_argument(
        "--truncate", dest="truncate", action="store_true", default=True, help="cut over-long texts (default)"
    )
    trunc.add_argument("--no-truncate", dest="truncate", action="store_false", help="reject over-long texts")
    sp.add_argument(
        "--batch-tokens",
        type=positive_int,
        default=None,
        help="tokens one merged model call collects before it stops waiting (default: one forward batch of the "
        "encode engine, whose budget is 1024 on CPU, 32768 on CUDA, 16384 on Apple MPS; on CPU eight of them: 8192)",
    )
    sp.add_argument(
        "--batch-wait-ms",
        type=_non_negative_float,
        default=DEFAULT_BATCH_WAIT_MS,
        help="how long an idle server waits for more requests to merge (default: %(default)s)",
    )
    sp.add_argument(
        "--max-body-bytes", type=positive_int, default=DEFAULT_MAX_BODY_BYTES, help="request body cap (default: 4 MiB)"
    )
    sp.add_argument(
        "--max-queue", type=positive_int, default=DEFAULT_MAX_QUEUE, help="waiting requests before 503 (default: 1024)"
    )
    sp.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    sp.add_argument("--no-access-log", action="store_true", help="do not log every request")
    sp.set_defaults(func=cmd_serve)


def served_name_for(model: str) -> str:
    """What clients call the model: a recipe name as given, a folder by its last part."""
    path = Path(model).expanduser()
    return path.resolve().name if path.exists() else model


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
        from transformers.utils import logging as hf_logging

        from .app import create_app
    except ImportError as e:
        raise Dec2VecError(
            f"dec2vec serve needs the serve extra ({e.name} is missing): pip install 'dec2vec[serve]'"
        ) from e
    from ..text_embedders import load_text_embedder
    from .settings import ServerSettings

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be within 0..65535, got {args.port}")
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    settings = ServerSettings(  # checked before the model loads: a bad flag fails in a second, not after a minute
        served_name=args.served_name or served_name_for(args.model),
        api_key=api_key,
        max_inputs=args.max_inputs,
        max_tokens_per_input=args.max_tokens_per_input,
        truncate=args.truncate,
        batch_tokens=args.batch_tokens,
        batch_wait_ms=args.batch_wait_ms,
        max_body_bytes=args.max_body_bytes,
        max_queue=args.max_queue,
    )
    check_port_free(args.host, args.port)  # before the model loads, and in dec2vec's words, not uvicorn's
    if api_key is None and not _is_loopback(args.host):
        print(
            f"warning: serving on {args.host} without an API key: anyone who can reach it can use it "
            f"(set --api-key or ${API_KEY_ENV})",
            file=sys.stderr,
        )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()
    embedder = load_text_embedder(args.model, device=args.device, dtype=args.dtype, quantize=args.quantize)
    app = create_app(embedder, settings)
    s = app.state.settings
    kind = embedder.config.recipe  # "encoder-only" for an encoder-only model
    # --port 0: bind here, so the address printed is the port the kernel chose, not ":0"
    sock = bind_socket(args.host, 0) if args.port == 0 else None
    port = sock.getsockname()[1] if sock is not None else args.port
    print(
        f"serving '{s.served_name}' ({kind}, dim {embedder.embedding_dim}, {embedder.device}) "
        f"on http://{args.host}:{port} — POST /v1/embeddings, POST /embed; auth {'on' if api_key else 'off'}",
        file=sys.stderr,
        flush=True,
    )
    if sock is None:
        uvicorn.run(app, host=args.host, port=args.port, access_log=not args.no_access_log, log_level="info")
        return 0
    config = uvicorn.Config(app, host=args.host, port=port, access_log=not args.no_access_log, log_level="info")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` as uvicorn binds it (SO_REUSEADDR), for uvicorn to listen on."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror})") from None
    return sock


def check_port_free(host: str, port: int) -> None:
    """A ConfigError unless ``host:port`` can be bound now (uvicorn binds it after the model loads).

    The probe binds as uvicorn does (SO_REUSEADDR, so a port in TIME_WAIT counts as free) and lets
    go at once; a server that takes the port during the model load still fails in uvicorn.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: cannot resolve it ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use; stop that server or pass another --port"
                ) from None
            raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror})") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
