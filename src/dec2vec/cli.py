"""The ``dec2vec`` command: recipes, info, embed, train, data, eval, models, export, serve, index, search, ask, bench.

This module builds the parser and runs a command; each subcommand's flags and handler live beside
the code it drives (``commands/``, ``serving/commands.py``, ``search/commands.py``, ``bench/commands.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

# Only light imports up here: `dec2vec --help` must not pay for torch (each command imports its own).
from . import __version__
from .errors import Terminated, explain


class Parser(argparse.ArgumentParser):
    """argparse with dec2vec's error format: one line on stderr and exit 2, like every other error.

    Why: argparse prints the whole usage block before its message, which buries the one line that
    matters; the usage stays one ``--help`` away. Subparsers inherit the class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"dec2vec: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from .bench.commands import register as register_bench
    from .commands.data import register as register_data
    from .commands.embed import register as register_embed
    from .commands.evaluate import register as register_eval
    from .commands.export import register as register_export
    from .commands.models import register as register_models
    from .commands.train import register as register_train
    from .search.commands import register as register_search
    from .serving.commands import register as register_serve

    p = Parser(prog="dec2vec", description="Text embeddings from decoder-only LLMs.")
    p.add_argument("--version", action="version", version=f"dec2vec {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = p.add_subparsers(dest="command", required=True)
    register_embed(sub)  # recipes, info, embed
    register_train(sub)  # train, validate
    register_eval(sub)
    register_models(sub)
    register_export(sub)
    register_data(sub)
    register_serve(sub)
    register_search(sub)  # index, search, ask
    register_bench(sub)
    return p


DEBUG_ENV = "DEC2VEC_DEBUG"


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(f"signal {signum}")


def _catch_sigterm() -> Callable[[], None]:
    """SIGTERM as an exception (like Ctrl-C's KeyboardInterrupt), so temp files are removed before exit.

    Returns the function that puts the previous handler back (main() runs in-process in tests).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _terminate)
    return lambda: signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every expected failure (dec2vec's errors, OS faults, damaged or malformed files:
    :func:`dec2vec.errors.explain`) is one ``dec2vec: error:`` line on stderr and exit 2; a bug keeps
    its traceback, and ``DEC2VEC_DEBUG=1`` shows it for every failure."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, for reports
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    restore = _catch_sigterm()
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away shows here, in the handler below, not at interpreter exit
        return code
    except BrokenPipeError:
        # `dec2vec embed ... | head`: the reader closed the pipe; stop quietly, as a tool killed by SIGPIPE does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Terminated:
        return 143  # 128 + SIGTERM, as a shell reports a process the signal killed
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        # None: not on the list of expected failures, so a bug: it keeps its traceback
        message = explain(e, getattr(args, "db", None))
        if message is None or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        # one line, always: some messages quote another library's (a YAML parser's spans several lines)
        print(f"dec2vec: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
