"""The ``dec2vec bench`` subcommand."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..argtypes import device, positive_int
from ..errors import InputError, ModelNotFoundError

QUICK = {"n": 32, "sweep_n": 4, "warmup": 4, "sweep": [32, 128], "st_recipes": ["mean"]}


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="encode speed of every recipe beside sentence-transformers")
    b.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes on a CPU: 32 mixed texts, 4 per sweep length (32, 128), ST baseline for mean only",
    )
    b.add_argument(
        "--n", type=positive_int, default=None, help="mixed texts (default 1000 on CPU, 20000 on CUDA; quick 32)"
    )
    b.add_argument("--recipes", nargs="+", default=None, metavar="RECIPE", help="(default: every recipe)")
    b.add_argument("--texts", default=None, metavar="FILE", help="read the mixed texts from a .txt/.jsonl file")
    b.add_argument("--write-texts", default=None, metavar="FILE", help="write the mixed texts to FILE and stop")
    b.add_argument(
        "--sweep",
        nargs="*",
        type=positive_int,
        default=None,
        help="fixed lengths (default 32 128 512; quick 32 128; none: no sweep)",
    )
    b.add_argument("--sweep-n", type=positive_int, default=None, help="texts per sweep length (default 64; quick 4)")
    b.add_argument("--sweep-recipes", nargs="*", default=["mean"], metavar="RECIPE")
    b.add_argument("--backbone", default=None, help="backbone name or folder (default: the default backbone)")
    b.add_argument("--encoder", default=None, help="Causal2Vec light encoder (default: all-MiniLM-L6-v2)")
    b.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    b.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    b.add_argument("--max-tokens", type=positive_int, default=None, help="token budget per batch (default: per device)")
    pk = b.add_mutually_exclusive_group()
    pk.add_argument("--packed", dest="packed", action="store_true", default=None, help="force the varlen path")
    pk.add_argument("--padded", dest="packed", action="store_false", help="force the padded path")
    b.add_argument("--compile", action="store_true", help="torch.compile the decoder first")
    b.add_argument(
        "--st-batch-sizes", nargs="+", type=positive_int, default=[32], help="sentence-transformers batch sizes"
    )
    b.add_argument("--no-baselines", action="store_true", help="skip sentence-transformers on the same backbone")
    b.add_argument("--no-minilm", action="store_true", help="skip all-MiniLM-L6-v2")
    b.add_argument("--mfu", action=argparse.BooleanOptionalAction, default=None, help="MFU (default: on CUDA)")
    b.add_argument(
        "--modes",
        nargs="+",
        default=None,
        choices=["fp32", "bf16", "int8"],
        help="run every recipe in each CPU inference mode (int8: dec2vec.quantize); sentence-transformers then "
        "runs in fp32, and the report judges the speed targets per mode",
    )
    b.add_argument(
        "--quality",
        nargs="+",
        default=None,
        metavar="MODE=RESULTS",
        help="each mode's standard-suite results (dec2vec eval --out DIR, or DIR/results.json[:MODEL]); "
        "fp32 is the reference: reports each mode's paired CI and the default mode the rule picks",
    )
    b.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write bench.json and bench.md here (checked before the timings; existing ones are replaced)",
    )
    b.set_defaults(func=cmd_bench)


def _check_paths(args: argparse.Namespace) -> None:
    """--out, --write-texts, --texts, --backbone and --encoder, checked before anything is measured."""
    from .. import models
    from ..io import check_not_an_input, check_writable, count_texts

    if args.out:
        check_writable(args.out, "--out", folder=True)
    if args.write_texts:
        check_writable(args.write_texts, "--write-texts")
        check_not_an_input(args.write_texts, [args.texts], "--write-texts")
    if args.texts:
        count_texts(args.texts)  # exists, and every line is a text
    for flag, ref in (("--backbone", args.backbone), ("--encoder", args.encoder)):
        if ref is not None:
            try:
                models.weights_folder(ref)
            except ModelNotFoundError as e:
                raise InputError(f"{flag}: {e}") from None


def cmd_bench(args: argparse.Namespace) -> int:
    from transformers.utils import logging as hf_logging

    from .. import models
    from ..device import pick_device
    from ..recipes import recipe_names
    from . import run, texts

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    device = pick_device(args.device)
    _check_paths(args)  # the results are written last: a bad path fails now, not after the timings
    quick = QUICK if args.quick else {}
    n = args.n or quick.get("n") or (20000 if device.type == "cuda" else 1000)
    if args.write_texts:
        texts.write_texts(Path(args.write_texts), texts.mixed_texts(n))
        print(f"wrote {n} mixed texts to {args.write_texts}", file=sys.stderr)
        return 0
    recipes = args.recipes or recipe_names()
    quality = {}
    for item in args.quality or []:
        mode, sep, where = item.partition("=")
        if not sep or mode not in run.MODES or not where:
            raise InputError(f"--quality takes MODE=RESULTS with MODE one of {', '.join(run.MODES)}; got '{item}'")
        quality[mode] = where
    if quality:
        from ..evaluation.compare import find_model
        from .targets import check_quality

        check_quality(quality)
        for where in quality.values():
            find_model(where)  # a missing or unreadable result fails now, not after the timings
    unknown = sorted(set(recipes) - set(recipe_names()))
    if unknown:
        raise InputError(f"unknown recipe(s) {unknown}; known: {', '.join(recipe_names())}")
    opts = run.BenchOptions(
        recipes=list(recipes),
        n=n,
        sweep=list(args.sweep if args.sweep is not None else quick.get("sweep", [32, 128, 512])),
        st_recipes=list(quick.get("st_recipes", ["mean", "last-token"])),
        sweep_n=args.sweep_n or quick.get("sweep_n") or 64,
        sweep_recipes=list(args.sweep_recipes),
        device=args.device,
        dtype=args.dtype,
        backbone=args.backbone or models.DEFAULT_BACKBONE,
        encoder=args.encoder or models.DEFAULT_ENCODER,
        texts_file=args.texts,
        max_tokens=args.max_tokens,
        packed=args.packed,
        compile=args.compile,
        st_batch_sizes=list(args.st_batch_sizes),
        baselines=not args.no_baselines,
        minilm=not args.no_minilm,
        mfu=args.mfu,
        warmup=quick.get("warmup", 64),
        modes=list(args.modes or []),
        quality=quality,
    )
    result = run.run(opts, log=lambda s: print(s, flush=True))
    if args.out:
        command = "dec2vec " + shlex.join(args.argv)
        run.save(result, Path(args.out), command)
        print(f"wrote {args.out}/bench.json and bench.md", file=sys.stderr)
    return 0
