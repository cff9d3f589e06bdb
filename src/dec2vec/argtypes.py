"""argparse value types shared by the subcommands (import-light: ``dec2vec --help`` builds every parser).

A bad number then fails as the flag is parsed, with the flag's name, before any model loads;
checked later it would surface after a minute of loading, or as a bare ValueError deep in the engine.
"""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, token budgets, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (overlaps, offsets)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def device(text: str) -> str:
    """A device this torch can run on (cpu, cuda, cuda:N, mps), checked as the flag is parsed.

    Imports torch, but only when the flag is given: ``--help`` stays light.
    """
    from .device import check_device
    from .errors import ConfigError

    try:
        dev = check_device(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"device '{text}': dec2vec runs on cpu, cuda, cuda:N or mps")
    return text


DTYPE_CHOICES = ["auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"]


def add_precision_args(parser: argparse.ArgumentParser) -> None:
    """``--dtype`` and ``--quantize``: the inference modes every model-loading command offers.

    One definition, so that embed, serve, index and eval spell and explain them the same way.
    """
    parser.add_argument(
        "--dtype",
        default=None,
        choices=DTYPE_CHOICES,
        help="weights and compute (default: bfloat16 on CPUs with AVX512-BF16 or AMX, where it is ~1.6x faster at "
        "no measurable quality loss; else the model's: float32 on CPU, bfloat16 on CUDA)",
    )
    parser.add_argument(
        "--quantize",
        default=None,
        choices=["int8"],
        help="CPU only: int8 dynamic quantization of the linear layers whose inputs have no large outliers "
        "(dec2vec.quantize; quality and speed: docs/BENCHMARKS.md)",
    )
