"""The ``dec2vec recipes``, ``info`` and ``embed`` subcommands: what a model is, and its vectors."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from ..argtypes import add_precision_args, device, positive_int
from ..errors import InputError
from ..pretrained import DEFAULT_MODEL


def _load(model: str, device: str | None, dtype: str | None, quantize: str | None = None):  # -> TextEmbedder
    """A dec2vec model, or a registry encoder (all-minilm-l6-v2 …) that embeds as published."""
    from transformers.utils import logging as hf_logging

    from ..text_embedders import load_text_embedder

    hf_logging.disable_progress_bar()
    return load_text_embedder(model, device=device, dtype=dtype, quantize=quantize)  # bf16 on CPUs that run it natively


def cmd_recipes(args: argparse.Namespace) -> int:
    from ..recipes import get_recipe, recipe_names

    for name in recipe_names():
        print(get_recipe(name)().describe())
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..encoder_only import is_encoder_only

    emb = _load(args.model, args.device, args.dtype, args.quantize)
    if is_encoder_only(emb):
        return _print_info(emb.describe(), args.json)
    params = emb.num_parameters()
    info = {
        "recipe": emb.config.recipe,
        "attention": "bidirectional" if emb.recipe.bidirectional else "causal",
        "pooling": emb.recipe.pooling,
        "backbone": emb.config.backbone,
        "backbone_architecture": type(emb.backbone).__name__,
        "hidden_size": emb.hidden_size,
        "encoder": emb.config.encoder,
        "embedding_dim": emb.embedding_dim,
        "max_length": emb.max_length,
        "parameters": params,
        "parameters_total": sum(params.values()),
        "dtype": str(emb.dtype).removeprefix("torch."),
        "quantize": emb.quantization.summary() if emb.quantization else None,
        "device": str(emb.device),
        "recipe_options": emb.config.recipe_options,
    }
    return _print_info(info, args.json)


def _print_info(info: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:<22} {v}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from ..encoder_only import ENCODER_ONLY, refuse_instruction
    from ..io import STDIN, check_not_an_input, check_output_path, is_stream, read_texts, write_embeddings
    from ..pipeline import TruncationWarning, validate_texts
    from ..references import resolve_model

    if args.texts == [STDIN] and not args.input:  # `dec2vec embed -`: the texts come on standard input
        args.texts, args.input, args.json = [], STDIN, args.json or not args.output
    if bool(args.texts) == bool(args.input):
        raise InputError("give texts on the command line or --input FILE, not both and not neither")
    if args.input and not (args.output or args.json):
        raise InputError("--input needs --output FILE (.npy, .jsonl, .parquet) or --json")
    if args.output:
        check_output_path(args.output)  # fail before a long job, not after
        check_not_an_input(args.output, [args.input])
    if args.instruction and resolve_model(args.model).kind == ENCODER_ONLY:
        refuse_instruction(args.model, args.instruction, flag="--instruction", hint="embed without it")
    if args.input and not args.json and not is_stream(args.input):
        return _embed_file(args)  # a file is checked, then streamed; standard input is read whole
    source = read_texts(args.input, field=args.field) if args.input else None
    texts = source.texts if source else validate_texts(list(args.texts))
    emb = _load(args.model, args.device, args.dtype, args.quantize)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TruncationWarning)
            vectors = emb.encode(
                texts,
                instruction=args.instruction,
                normalize=not args.no_normalize,
                truncate=not args.no_truncate,
                max_tokens=args.max_tokens,
                show_progress=(len(texts) >= 100) if args.input else False,
            )
    except InputError as e:
        if source is not None and e.index is not None:
            raise InputError(f"{source.where(e.index)}: {e}") from None
        raise
    for w in caught:
        if isinstance(w.message, TruncationWarning) and source is not None:
            idx = w.message.indices
            print(
                f"warning: {len(idx)} text(s) were truncated to the model's limit (first: {source.where(idx[0])})",
                file=sys.stderr,
            )
        else:
            print(f"warning: {w.message}", file=sys.stderr)
    if args.output:
        write_embeddings(args.output, vectors, texts if args.output.endswith((".jsonl", ".parquet")) else None)
        _describe_output(args, emb, vectors.shape[1])
        print(f"wrote {len(texts)} embeddings of dimension {vectors.shape[1]} to {args.output}", file=sys.stderr)
    if args.json or not args.output:
        print(json.dumps(vectors.tolist()))
    return 0


def _embed_file(args: argparse.Namespace) -> int:
    """--input to --output as a stream: flat memory for any file size (checked first, written atomically)."""
    from ..io import EmbeddingWriter, count_texts, iter_texts, line_of

    n = count_texts(args.input, args.field)  # every line checked before the model loads
    emb = _load(args.model, args.device, args.dtype, args.quantize)
    keep_texts = args.output.endswith((".jsonl", ".parquet"))
    cut: list[int] = []
    try:
        with EmbeddingWriter(args.output, n, emb.embedding_dim, with_texts=keep_texts) as writer:
            blocks = emb.encode_iter(
                (text for _, text in iter_texts(args.input, args.field)),
                instruction=args.instruction,
                normalize=not args.no_normalize,
                chunk_size=args.chunk_size,
                truncate=not args.no_truncate,
                max_tokens=args.max_tokens,
                show_progress=n >= 100,
                total=n,
                on_truncated=cut.extend,
            )
            texts = iter_texts(args.input, args.field) if keep_texts else None  # a second lazy pass for the rows
            for block in blocks:
                rows = [next(texts)[1] for _ in range(len(block))] if texts is not None else None
                writer.write(block, rows)
    except InputError as e:
        if e.index is not None:
            raise InputError(f"{args.input}:{line_of(args.input, e.index, args.field)}: {e}") from None
        raise
    if cut:
        first = f"{args.input}:{line_of(args.input, cut[0], args.field)}"
        print(f"warning: {len(cut)} text(s) were truncated to the model's limit (first: {first})", file=sys.stderr)
    _describe_output(args, emb, emb.embedding_dim)
    print(f"wrote {n} embeddings of dimension {emb.embedding_dim} to {args.output}", file=sys.stderr)
    return 0


def _describe_output(args: argparse.Namespace, emb, dim: int) -> None:  # emb: TextEmbedder
    """``OUTPUT.meta.json``: which model, in which precision, made the vectors (see ``io.write_sidecar``)."""
    from .. import __version__
    from ..device import precision_of
    from ..io import write_sidecar

    facts = {
        "model": args.model,
        **precision_of(emb),
        "device": str(emb.device),
        "embedding_dim": dim,
        "normalized": not args.no_normalize,
        "instruction": args.instruction,
        "dec2vec": __version__,
    }
    write_sidecar(args.output, facts)


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("recipes", help="list the registered recipes, one per line").set_defaults(func=cmd_recipes)

    def model_args(sp: argparse.ArgumentParser, positional: bool) -> None:
        if positional:
            sp.add_argument("model", help="a recipe name, a saved dec2vec folder or a registry encoder")
        else:
            sp.add_argument(
                "--model",
                "-m",
                default=DEFAULT_MODEL,
                help=f"a shipped model, a recipe name, a saved dec2vec folder or a registry encoder such as "
                f"all-minilm-l6-v2 (default: {DEFAULT_MODEL}, trained)",
            )
        sp.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
        add_precision_args(sp)

    info = sub.add_parser("info", help="recipe, backbone, dimensions and parameters of a model")
    model_args(info, positional=True)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    embed = sub.add_parser("embed", help="embed texts given as arguments or in a file")
    model_args(embed, positional=False)
    embed.add_argument("texts", nargs="*", help="texts to embed; - alone reads them from standard input")
    embed.add_argument("--instruction", "-i", default=None, help="task instruction written before every text")
    embed.add_argument(
        "--input",
        default=None,
        help="a .txt (one text per line) or .jsonl file; - or a pipe reads standard input (JSONL if its first "
        "text starts with {, else lines)",
    )
    embed.add_argument("--field", default="text", help="JSONL field holding the text (default: text)")
    embed.add_argument(
        "--output",
        "-o",
        default=None,
        help="write .npy, .jsonl or .parquet instead of printing; an existing file is replaced when the job "
        "succeeds (never half-written), and refused if it is the --input file",
    )
    embed.add_argument("--json", action="store_true", help="print a JSON list of vectors")
    embed.add_argument("--no-normalize", action="store_true", help="keep raw (unnormalised) vectors")
    embed.add_argument("--no-truncate", action="store_true", help="error on texts over the length limit")
    embed.add_argument(
        "--chunk-size",
        type=positive_int,
        default=4096,
        help="texts read, sorted and written per block of an --input file; memory grows with it (default 4096)",
    )
    embed.add_argument(
        "--max-tokens",
        type=positive_int,
        default=None,
        help="padded tokens per batch (default: 1024 on CPU, 32768 on CUDA, 16384 on Apple MPS)",
    )
    embed.set_defaults(func=cmd_embed)
