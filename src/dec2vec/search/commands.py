"""The ``dec2vec index``, ``search`` and ``ask`` subcommands (import LanceDB only when run)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ..argtypes import add_precision_args, device, non_negative_int, positive_int
from ..pretrained import DEFAULT_MODEL
from .defaults import (
    ASK_MODES,
    DEFAULT_BATCH,
    DEFAULT_CONTEXT_TOKENS,
    DEFAULT_INSTRUCTION,
    DEFAULT_K,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_MIN_RELEVANCE,
)

SNIPPET = 240


def _quiet_hf() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _shown(path: str) -> str:
    """A stored absolute path as the user would write it: relative to the working folder when inside it."""
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def _open_index(args: argparse.Namespace, create: bool):  # -> Index
    from ..text_embedders import load_text_embedder
    from .indexer import Index, _model_ref, index_dtype
    from .store import META_NAME, Store

    _quiet_hf()
    meta = Store(args.db, create=False).read_meta() if (Path(args.db).expanduser() / META_NAME).is_file() else None
    if not create and meta is None:
        Store(args.db, create=False)  # raises "no index at ..."
    model = args.model or (meta or {}).get("model_ref") or (DEFAULT_MODEL if create else None)
    if model is None:
        from ..errors import InputError

        raise InputError(f"the index at {args.db} was built from Python with an in-memory model; pass --model")
    # an existing index's model loads in the precision its vectors were made in, unless asked otherwise
    dtype = args.dtype or (None if args.quantize else index_dtype(meta))
    emb = load_text_embedder(model, device=args.device, dtype=dtype, quantize=args.quantize)
    return Index(args.db, emb, model_ref=_model_ref(model), create=create)


def cmd_index(args: argparse.Namespace) -> int:
    """Everything the user gave is checked before the model loads: the flags, the --db path, and
    every input file down to its last line. A build that fails before committing anything removes
    the --db folder it created, so a typo leaves no empty index behind."""
    from ..errors import InputError
    from ..io import check_writable, first_missing

    if args.action == "info":
        return _index_info(args)
    if bool(args.input) == bool(args.demo_corpus):
        raise InputError("give --input FILES_OR_DIRS or --demo-corpus vital (one of them)")
    if args.limit is not None and not args.demo_corpus:
        raise InputError("--limit applies to --demo-corpus only")
    if args.chunk_size is not None and args.overlap is not None:
        from .chunking import ChunkSpec

        ChunkSpec(args.chunk_size, args.overlap, args.unit or "tokens")  # raises on overlap >= size
    db = check_writable(args.db, "--db", folder=True)
    created = first_missing(db)  # the folders this build makes
    try:
        return _build(args)
    except BaseException:
        if created is not None and _nothing_committed(db):  # only our leftovers (Ctrl-C, kill, disk full)
            shutil.rmtree(created, ignore_errors=True)
        raise


def _nothing_committed(db: Path) -> bool:
    """True when the index folder holds no committed document: removing it loses nothing.

    A build writes its description first and commits documents batch by batch; one stopped before
    its first commit leaves a folder that would only read as an empty index.
    """
    from ..errors import InputError
    from .store import META_NAME, Store

    if not (db / META_NAME).exists():
        return True
    try:
        return Store(db, create=False).count_documents() == 0
    except (InputError, OSError, RuntimeError, ValueError):  # unreadable: keep it, the next build looks again
        return False


def _build(args: argparse.Namespace) -> int:
    from .documents import read_inputs

    inputs = list(args.input or [])
    if args.demo_corpus:
        from .vital import FILE_NAME, write_vital_corpus

        inputs = [str(write_vital_corpus(Path(args.db).expanduser() / "sources" / FILE_NAME, args.limit))]
    documents = read_inputs(inputs, args.field)  # a bad file or line fails here, before the model loads
    index = _open_index(args, create=True)
    spec = index.chunk_spec(args.chunk_size, args.overlap, args.unit)
    if not args.quiet:
        _err(
            f"indexing into {index.path} with {index.model_ref} (chunks: {spec.size} {spec.unit}, "
            f"overlap {spec.overlap})"
        )
    report = index.build(
        inputs,
        documents=documents,
        text_field=args.field,
        chunking=spec,
        batch_size=args.batch,
        prune=args.prune,
        max_tokens=args.max_tokens,
        progress=None if args.quiet else _err,
    )
    if report.truncated:
        _err(f"warning: {report.truncated} chunk(s) were cut to the model's limit; use a smaller --chunk-size")
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.summary())
    return 0


def _index_info(args: argparse.Namespace) -> int:
    from .store import Store

    store = Store(args.db, create=False)
    info: dict[str, Any] = {
        "db": str(store.path),
        "documents": store.count_documents(),
        "chunks": store.count(),
        "files": len(store.paths()),
        "ann_index": store.has_vector_index(),
        **(store.read_meta() or {}),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:<10} {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    return 0


def _snippet(text: str, n: int = SNIPPET) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1].rstrip() + "…"


def _print_hit(rank: int, hit: Any) -> None:
    title = f"{hit.title} — " if hit.title else ""
    print(f"{rank}. {hit.score:.4f}  {title}{_shown(hit.source)}")
    print(f"   {_snippet(hit.text)}")


def _check_query(text: str, what: str) -> None:
    if not text.strip():
        from ..errors import InputError

        raise InputError(f"the {what} is empty")


def cmd_search(args: argparse.Namespace) -> int:
    _check_query(args.query, "query")
    index = _open_index(args, create=False)
    instruction = None if args.no_instruction else args.instruction
    hits = index.search(args.query, k=args.k, instruction=instruction)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], indent=2, ensure_ascii=False))
        return 0
    for i, h in enumerate(hits, start=1):
        _print_hit(i, h)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from .rag import ask

    _check_query(args.question, "question")
    index = _open_index(args, create=False)
    instruction = None if args.no_instruction else args.instruction
    answer = ask(
        index,
        args.question,
        k=args.k,
        max_new_tokens=args.max_new_tokens,
        instruction=instruction,
        context_tokens=args.context_tokens,
        mode=args.mode,
        min_relevance=args.min_relevance,
    )
    if args.show_prompt and answer.prompt:
        _err(answer.prompt)
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return 0
    _err(f"answer: {answer.mode}" + (f" ({answer.reason})" if answer.reason else ""))
    print(answer.text)
    print("\nSources:")
    for i, h in enumerate(answer.sources, start=1):
        title = f"{h.title} — " if h.title else ""
        print(f"[{i}] {h.score:.4f}  {title}{_shown(h.source)}")
    return 0


def _model_args(sp: argparse.ArgumentParser, build: bool) -> None:
    default = f"the index's model; for a new index: {DEFAULT_MODEL}, trained" if build else "the index's model"
    sp.add_argument(
        "--model",
        "-m",
        default=None,
        help=f"a recipe name, a saved dec2vec folder or a registry encoder like all-minilm-l6-v2 (default: {default})",
    )
    sp.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    add_precision_args(sp)


def _query_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--db", required=True, metavar="PATH", help="the index folder")
    sp.add_argument(
        "--instruction", "-i", default=DEFAULT_INSTRUCTION, help=f"query instruction (default: {DEFAULT_INSTRUCTION!r})"
    )
    sp.add_argument("--no-instruction", action="store_true", help="embed the query as it is")
    sp.add_argument("--json", action="store_true", help="print JSON")
    _model_args(sp, build=False)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``index`` (build, info), ``search`` and ``ask`` to the ``dec2vec`` command."""
    ix = sub.add_parser("index", help="build (incrementally) or describe a persistent LanceDB vector index")
    ix.add_argument("action", choices=["build", "info"], help="build: add/update documents; info: describe")
    ix.add_argument("--db", required=True, metavar="PATH", help="the index folder (created if missing)")
    ix.add_argument("--input", nargs="+", default=None, metavar="PATH", help=".txt/.md/.jsonl/.csv/.parquet or folders")
    ix.add_argument(
        "--demo-corpus", choices=["vital"], default=None, help="index the Wikipedia Vital Articles summaries"
    )
    ix.add_argument(
        "--limit", type=positive_int, default=None, help="with --demo-corpus: the first N summaries (fixed order)"
    )
    ix.add_argument("--field", default="text", help="the text field of .jsonl/.csv/.parquet rows (default: text)")
    ix.add_argument(
        "--chunk-size", type=positive_int, default=None, help="chunk size (default: 256 tokens or what fits)"
    )
    ix.add_argument(
        "--overlap", type=non_negative_int, default=None, help="overlap between chunks (default: 32 tokens)"
    )
    ix.add_argument("--unit", choices=["tokens", "chars"], default=None, help="chunk unit (default: tokens)")
    ix.add_argument(
        "--batch",
        type=positive_int,
        default=DEFAULT_BATCH,
        help=f"chunks embedded and committed together (default: {DEFAULT_BATCH})",
    )
    ix.add_argument("--prune", action="store_true", help="remove indexed files that are not among the inputs")
    ix.add_argument("--max-tokens", type=positive_int, default=None, help="padded tokens per forward pass")
    ix.add_argument("--json", action="store_true", help="print the build report as JSON")
    ix.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    _model_args(ix, build=True)
    ix.set_defaults(func=cmd_index)

    se = sub.add_parser("search", help="search an index: ranked chunks with cosine score and source")
    se.add_argument("query", help="the query text")
    se.add_argument("-k", type=positive_int, default=5, help="number of results (default: 5)")
    _query_args(se)
    se.set_defaults(func=cmd_search)

    ak = sub.add_parser(
        "ask", help="answer a question from an index, grounded in the retrieved sources (RAG or extractive)"
    )
    ak.add_argument("question", help="the question")
    ak.add_argument("-k", type=positive_int, default=DEFAULT_K, help=f"sources to retrieve (default: {DEFAULT_K})")
    ak.add_argument(
        "--max-new-tokens",
        type=positive_int,
        default=DEFAULT_MAX_NEW_TOKENS,
        help=f"answer length limit (default: {DEFAULT_MAX_NEW_TOKENS})",
    )
    ak.add_argument(
        "--context-tokens",
        type=positive_int,
        default=DEFAULT_CONTEXT_TOKENS,
        help=f"prompt + answer budget in tokens (default: {DEFAULT_CONTEXT_TOKENS})",
    )
    ak.add_argument(
        "--mode",
        choices=ASK_MODES,
        default="auto",
        help="auto: generate with the base LM, checked against the sources, else quote the best source sentence; "
        "extractive: always quote; generate: never quote (default: auto)",
    )
    ak.add_argument(
        "--min-relevance",
        type=float,
        default=DEFAULT_MIN_RELEVANCE,
        help="below this strength of the best source, answer that it cannot (0 turns it off; "
        f"default: {DEFAULT_MIN_RELEVANCE})",
    )
    ak.add_argument("--show-prompt", action="store_true", help="print the prompt to stderr")
    _query_args(ak)
    ak.set_defaults(func=cmd_ask)
