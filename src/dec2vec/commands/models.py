"""The ``dec2vec models`` subcommand: list the registry and shipped models, or pull an opt-in one."""

from __future__ import annotations

import argparse

from ..errors import Dec2VecError, InputError
from ..pretrained import DEFAULT_MODEL


def cmd_models(args: argparse.Namespace) -> int:
    from .. import models

    models.cache_home()  # a DEC2VEC_HOME that is a file fails before the first row, not halfway through the list
    if args.action == "pull":
        if not args.name:
            raise InputError("models pull needs a NAME; see `dec2vec models list`")
        models.check_cache_home()  # the model is assembled there
        print(models.pull(args.name))
        return 0
    for m in models.REGISTRY.values():
        state = "installed" if models.is_installed(m.name) else "not installed"
        print(f"{m.name:<30} {m.role:<9} {state:<14} {m.note}")
    from .. import pretrained

    for name in pretrained.names():
        try:
            info = pretrained.describe(name)
        except Dec2VecError as e:
            print(f"{name:<30} {'trained':<9} {'missing':<14} {e}")
            continue
        default = ", the default model" if name == DEFAULT_MODEL else ""
        note = f"{info['recipe']} on {info['backbone']} + {info['encoder']}, ships in dec2vec{default}"
        print(f"{name:<30} {'trained':<9} {'shipped':<14} {note}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    mod = sub.add_parser("models", help="list registry and shipped models, or pull an opt-in registry model")
    mod.add_argument("action", choices=["list", "pull"], nargs="?", default="list")
    mod.add_argument("name", nargs="?", default=None)
    mod.set_defaults(func=cmd_models)
