"""The ``dec2vec export`` subcommand: a model as an ONNX graph with its tokenizers (docs/EXPORT.md)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from ..errors import InputError

FORMATS = ("onnx",)
SPEC_NAME = "dec2vec-onnx.json"  # export.onnx.SPEC_NAME; repeated so that `--help` imports no torch


def check_out_folder(out: str) -> Path:
    """``--out`` if it can be written and replacing it loses nothing but an older export.

    Why: the export swaps the finished folder into place, which removes what was there; a folder
    of other files given by mistake must be refused, not replaced.
    """
    from ..io import check_writable

    dest = check_writable(out, "--out", folder=True)
    if dest.is_dir() and any(dest.iterdir()) and not (dest / SPEC_NAME).is_file():
        raise InputError(f"--out {dest} is a folder of other files, not an ONNX export; give a new or empty folder")
    return dest


def cmd_export(args: argparse.Namespace) -> int:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"ONNX export needs {' and '.join(missing)}: pip install 'dec2vec[onnx]'")
    out = check_out_folder(args.out)
    from .. import loading

    loading.check_model(args.model)  # an unknown name or a damaged folder fails here, before any weights load
    from transformers.utils import logging as hf_logging

    from ..embedder import Embedder
    from ..export.onnx import export_onnx

    hf_logging.disable_progress_bar()
    emb = Embedder.from_pretrained(args.model, device="cpu", dtype="float32")
    result = export_onnx(emb, out, source=args.model, quantize=args.quantize)
    print(
        f"wrote {result.folder} ({result.onnx_bytes / 2**20:.1f} MiB graph, inputs {', '.join(result.inputs)}; "
        f"dimension {result.embedding_dim}; cosine to PyTorch on the check batch {result.min_cosine:.5f})",
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("export", help="write a model as an ONNX graph with its tokenizers")
    ex.add_argument("model", help="a saved dec2vec folder, a packaged model or a recipe name")
    ex.add_argument("--format", required=True, choices=FORMATS, help="export format (onnx)")
    ex.add_argument("--out", required=True, metavar="DIR", help="folder to write (replaced atomically)")
    ex.add_argument(
        "--quantize",
        default=None,
        choices=["int8"],
        help="onnxruntime dynamic quantization of the weights (smaller, faster on CPU, slightly different vectors)",
    )
    ex.set_defaults(func=cmd_export)
