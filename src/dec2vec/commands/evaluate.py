"""The ``dec2vec eval`` subcommand: run the offline suite, or compare results, or judge the claims."""

from __future__ import annotations

import argparse

from ..argtypes import device
from ..errors import InputError


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from transformers.utils import logging as hf_logging

    from ..evaluation.run import EvalConfig, default_baselines, run
    from ..io import check_writable

    if args.compare:
        return _eval_compare(args.compare)
    if args.claims:
        return _eval_claims(args.claims)
    check_writable(args.out, "--out", folder=True)  # the report is written last: fail now, not then
    hf_logging.disable_progress_bar()
    if args.baselines is None:
        baselines = default_baselines()
    elif args.baselines in (["none"], []):
        baselines = []
    else:
        baselines = args.baselines
    _check_models([*(args.models or []), *baselines], args)  # before the tasks load
    cfg = EvalConfig(
        models=list(args.models or []),
        tasks=list(args.tasks),
        baselines=baselines,
        out=Path(args.out),
        quick=args.quick,
        instructions=not args.no_instructions,
        generation=not args.no_generation,
        plots=not args.no_plots,
        device=args.device,
        use_cache=not args.no_cache,
        dtype={"bf16": "bfloat16", "fp32": "float32"}.get(args.dtype, args.dtype),
        quantize=args.quantize,
    )
    result = run(cfg)
    print((Path(args.out) / "report.md").read_text(encoding="utf-8") if args.print else f"{args.out}/report.md")
    return 0 if result["models"] else 1


def _check_models(specs: list[str], args: argparse.Namespace) -> None:
    """Every model name resolves and the precision flags suit the device: checked before the tasks load."""
    from ..evaluation.encoders import check_spec
    from ..models import check_cache_home

    check_cache_home()  # task files and cached results live there
    for spec in specs:
        check_spec(spec)
    if args.quantize:
        import torch

        from ..device import TORCH_DTYPES, pick_device
        from ..quantize import check_mode

        check_mode(args.quantize, pick_device(args.device), TORCH_DTYPES.get(args.dtype or "float32", torch.float32))


def _eval_compare(refs: list[str]) -> int:
    from ..evaluation.compare import compare_models, find_model, format_comparison

    if len(refs) != 2:
        raise InputError("--compare takes two results: A B (results.json files, report folders, or FILE:MODEL)")
    print(format_comparison(compare_models(find_model(refs[0]), find_model(refs[1]))), end="")
    return 0


def _eval_claims(files: list[str]) -> int:
    from ..evaluation.claims import format_verdicts, judge_all

    print(format_verdicts(judge_all(files)), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="evaluate models on the offline mini-MTEB suite; writes a report")
    ev.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="MODEL",
        help="saved dec2vec folders, recipe names (untrained), lsa or minilm; NAME=MODEL sets the report name",
    )
    ev.add_argument(
        "--tasks",
        nargs="+",
        default=["quick"],
        metavar="TASK",
        help="all (full suite), standard (sized to decide on a CPU), quick (small subsamples), or task names; "
        "other names are MTEB hub tasks",
    )
    ev.add_argument(
        "--baselines",
        nargs="*",
        default=None,
        metavar="MODEL",
        help="models every report carries (default: lsa minilm mpnet, untrained mean and echo); 'none' for none",
    )
    ev.add_argument("--out", default="eval-report", metavar="DIR", help="report folder (default: eval-report)")
    ev.add_argument("--quick", action="store_true", help="run named dec2vec tasks in their quick variant")
    ev.add_argument("--no-instructions", action="store_true", help="no task instructions before texts")
    ev.add_argument("--no-generation", action="store_true", help="skip perplexity and continuations")
    ev.add_argument("--no-plots", action="store_true", help="no PNG plots")
    ev.add_argument("--no-cache", action="store_true", help="recompute every result (the new ones replace the cached)")
    ev.add_argument("--print", action="store_true", help="print the Markdown report when done")
    ev.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    ev.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "fp32", "bfloat16", "bf16"],
        help="weights and compute of dec2vec models (default: bfloat16 on CPUs with native bf16, else the model's); "
        "baselines stay float32",
    )
    ev.add_argument(
        "--quantize",
        default=None,
        choices=["int8"],
        help="CPU only: int8 dynamic quantization of dec2vec models' linear layers (dec2vec.quantize); "
        "baselines stay float32",
    )
    ev.add_argument(
        "--compare",
        nargs=2,
        default=None,
        metavar=("A", "B"),
        help="instead of evaluating: B − A per task and for the mean, paired-bootstrap 95%% CI and a verdict "
        "(results.json files or report folders; FILE:MODEL picks a model)",
    )
    ev.add_argument(
        "--claims",
        nargs="+",
        default=None,
        metavar="RESULTS",
        help="instead of evaluating: the verdict of every claim of the reproduction from these results.json files",
    )
    ev.set_defaults(func=cmd_eval)
