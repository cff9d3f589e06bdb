"""The library versions (and source commit) that a result, a benchmark or a trained model was made with.

Read from the installed distributions' metadata, so nothing is imported (``torch`` reports
``2.13.0+cpu`` there, as ``torch.__version__`` does). A package that is not installed reads
``"not installed"``: a result says what it ran without, instead of leaving the key out.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path

NOT_INSTALLED = "not installed"

#: JSON key -> distribution. The keys are those results already written use (``sentence_transformers``
#: in bench.json, ``scikit-learn`` in eval results.json), so old and new outputs compare key by key.
DISTRIBUTIONS = {
    "dec2vec": "dec2vec",
    "torch": "torch",
    "transformers": "transformers",
    "sentence_transformers": "sentence-transformers",
    "peft": "peft",
    "mteb": "mteb",
    "scikit-learn": "scikit-learn",
    "numpy": "numpy",
    "datasets": "datasets",
}
#: what every record holds (besides ``python``); callers add the libraries their own results depend on
CORE = ("dec2vec", "torch", "transformers", "sentence_transformers", "peft")


def library_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """``python``, the :data:`CORE` libraries, then ``extra`` (keys of :data:`DISTRIBUTIONS`, or any
    distribution name, used as its own key), and ``dec2vec_commit`` when dec2vec runs from a git checkout."""
    out = {"python": platform.python_version()}
    for key in dict.fromkeys([*CORE, *extra]):
        try:
            out[key] = md.version(DISTRIBUTIONS.get(key, key))
        except md.PackageNotFoundError:
            out[key] = NOT_INSTALLED
    commit = source_commit()
    if commit:
        out["dec2vec_commit"] = commit
    return out


@functools.cache
def source_commit() -> str | None:
    """The commit dec2vec's source is checked out at (``+dirty`` with uncommitted changes to it), or
    None for an installed wheel, a machine without git, or a git that does not answer within 5 s."""
    here = Path(__file__).resolve().parent.parent  # the dec2vec package folder

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != here.parent.parent:  # src/dec2vec of this checkout, not a venv in a repo
        return None
    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit + ("+dirty" if dirty else "")
