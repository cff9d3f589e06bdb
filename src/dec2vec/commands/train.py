"""The ``dec2vec train`` and ``validate`` subcommands (import torch and the trainer only when run)."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..argtypes import device, positive_int


def _interrupt_on_sigterm() -> None:
    """Under torchrun, turn the launcher's SIGTERM into KeyboardInterrupt.

    Why: torchrun stops the other workers with SIGTERM when one fails or on Ctrl-C. Its default
    action kills the process at once; as an exception it unwinds through the trainer, which then
    destroys the process group in order (``DistContext.close``) before exiting.
    """
    import os
    import signal

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def cmd_train(args: argparse.Namespace) -> int:
    from transformers.utils import logging as hf_logging

    from ..train.config import load_config
    from ..train.distributed import launched_world_size
    from ..train.preflight import preflight
    from ..train.trainer import train

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # peft asks a deprecated property
    overrides = list(args.set or [])
    if args.skip_bad:
        overrides.append("skip_bad=true")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    cfg = load_config(args.config, overrides)
    preflight(cfg, launched_world_size())  # the whole run, before the process group is joined or a model loads
    _interrupt_on_sigterm()
    from ..io import first_missing
    from ..train.config_files import expand_home

    run_dir = expand_home(cfg.output_dir)
    created = first_missing(run_dir)  # the folders this run makes
    try:
        out = train(cfg, resume=args.resume, progress=not args.no_progress, checked=True)
    except BaseException:
        if created is not None and _nothing_saved(run_dir):  # failed before its first checkpoint: leave no folder
            import shutil

            shutil.rmtree(created, ignore_errors=True)
        raise
    print(f"saved the trained model to {out}", file=sys.stderr)
    return 0


def _nothing_saved(run_dir) -> bool:  # run_dir: Path
    """True when a run folder holds no checkpoint and no model: only the logs of a run that did nothing."""
    if (run_dir / "model").exists():
        return False
    checkpoints = run_dir / "checkpoints"
    return not checkpoints.is_dir() or not any(checkpoints.iterdir())


#: a part whose vectors of unrelated texts have a mean cosine above this carries (almost) no text
COLLAPSED_SPREAD = 0.95


def cmd_validate(args: argparse.Namespace) -> int:
    """Held-out validation split scores: what checkpoints and settings are chosen on (never the eval suite)."""
    from pathlib import Path

    from ..embedder import Embedder
    from ..io import check_not_an_input, check_writable
    from ..loading import check_model
    from ..train.config import load_config
    from ..train.validate import paired_mrr_difference, valid_sources, validate, write_report

    cfg = load_config(args.config, [])
    valid_sources(cfg)  # the held-out files exist
    refs = [ref.partition("=")[::2] if "=" in ref else (ref, ref) for ref in args.models]
    for _, model in refs:  # every model name, before the first is scored
        check_model(model)
    if args.out:
        check_writable(args.out, "--out")  # the report is written last: fail now, not after the scoring
        check_not_an_input(args.out, [args.config], "--out")
    blocks = None
    if args.selection:
        import hashlib

        from ..train.selection import read_selection, validate_selection

        blocks = read_selection(Path(args.selection))
        digest = hashlib.sha256(Path(args.selection).read_bytes()).hexdigest()
        print(f"selection split {args.selection}: sha256 {digest} (the fixed one: configs/selection.json)")
        instructions = {  # a selection source gets the instruction its corpus has in the config, if any
            Path(str(s.path)).name.removesuffix(".train.jsonl"): s.instruction for st in cfg.stages for s in st.data
        }
    results = {}
    for name, model in refs:
        emb = Embedder.from_pretrained(model, device=args.device)
        res = validate_selection(emb, blocks, instructions) if blocks is not None else validate(emb, cfg, n=args.n)
        results[name] = {"model": model, **res}
        parts = "  ".join(f"{k} R@1 {v['recall_at_1']:.3f}" for k, v in res["sources"].items())
        pooled = f"  pooled MRR {res['pooled']['mrr']:.4f}" if "pooled" in res else ""
        print(f"{name:<28} mean R@1 {res['mean']['recall_at_1']:.4f}  MRR {res['mean']['mrr']:.4f}{pooled}  ({parts})")
        for part, v in res.get("parts", {}).items():  # a composite embedding: each part alone (Causal2Vec)
            flag = "  COLLAPSED: the same state for every text" if v["spread"] > COLLAPSED_SPREAD else ""
            print(f"{'':<28} {part}-only MRR {v['mrr']:.4f}  mean cosine between texts {v['spread']:.3f}{flag}")
    names = list(results)
    if blocks is not None:
        from ..train.selection import paired_pooled_difference as compare
    else:
        compare = paired_mrr_difference
    for name in names[1:]:  # each model against the first, pair by pair
        diff, lo, hi = compare(results[names[0]], results[name])
        verdict = "better" if lo > 0 else "worse" if hi < 0 else "inconclusive"
        print(f"{name} − {names[0]}: MRR {diff:+.4f} [{lo:+.4f}, {hi:+.4f}] (95% CI, pairs resampled) {verdict}")
    if args.out:
        write_report({"config": args.config, "n": args.n, "models": results}, Path(args.out))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser("train", help="train a recipe from a YAML config (stages, data, LoRA...)")
    tr.add_argument("config", help="YAML config, e.g. configs/causal2vec.yaml")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field: stages.0.steps=20")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")
    tr.add_argument("--skip-bad", action="store_true", help="skip (and count) malformed data lines")
    tr.add_argument("--output-dir", default=None, help="override output_dir")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)
    va = sub.add_parser(
        "validate",
        help="score models on the held-out valid split of a config's contrastive data (for choosing checkpoints)",
    )
    va.add_argument("config", help="YAML training config; its contrastive sources' NAME.valid.jsonl are read")
    va.add_argument("--models", nargs="+", required=True, metavar="[NAME=]MODEL", help="saved folders or names")
    va.add_argument("--n", type=positive_int, default=100, help="pairs per source (default: 100)")
    va.add_argument(
        "--out",
        default=None,
        help="write the scores as JSON here (checked before scoring; an existing file is replaced, never the config)",
    )
    va.add_argument(
        "--selection",
        default=None,
        metavar="FILE",
        help="score on this fixed selection split (dec2vec data selection) instead of the first --n valid pairs",
    )
    va.add_argument("--device", type=device, default=None, help="cpu, cuda … (default: CUDA when present)")
    va.set_defaults(func=cmd_validate)
