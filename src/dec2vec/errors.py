"""Errors that dec2vec raises on bad input.

Every user-facing failure is one of these, with a message that says what was wrong and
where (item index, file and line), so the CLI can print it without a traceback.
"""

from __future__ import annotations


class Dec2VecError(Exception):
    """Base class: the CLI prints the message of any subclass and exits non-zero."""


class InputError(Dec2VecError, ValueError):
    """A text, list or file the caller passed is unusable; ``index`` is the bad item, when there is one."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class TruncationError(InputError):
    """A text is longer than the model's limit and truncation was switched off."""


class UnknownRecipeError(Dec2VecError, KeyError):
    """No recipe is registered under the name asked for."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(Dec2VecError, FileNotFoundError):
    """A backbone, encoder or saved embedder could not be found or loaded."""


class ConfigError(Dec2VecError, ValueError):
    """A configuration value is invalid."""


class SourceError(Dec2VecError, RuntimeError):
    """A training-data source (Debian or PyPI package) could not be fetched, found or read; says what fixes it."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an exception so that every ``finally`` and temp-file cleanup runs before exit.

    A KeyboardInterrupt subclass: the code that already stops cleanly on Ctrl-C (the trainer's
    checkpoint, the index's uncommitted batch) does the same on ``kill``.
    """


# Errors of the operating system that a user's environment causes, never dec2vec's code: a full
# disk, a path the user may not write, a file where a folder must be... Each gets one line.
_OS_FAULTS = {
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "ENOSPC": "no space left on the device (disk full)",
    "EDQUOT": "disk quota exceeded",
    "EROFS": "read-only file system",
    "ENOTDIR": "not a directory (a path component is a file)",
    "EISDIR": "is a directory",
    "ENOENT": "no such file or directory",
    "EEXIST": "already exists",
    "ENAMETOOLONG": "file name too long",
    "ELOOP": "too many levels of symbolic links",
    "EIO": "input/output error",
    "EMFILE": "too many open files",
    "ENFILE": "too many open files in the system",
    "ENOTEMPTY": "directory not empty",
    "EBUSY": "device or resource busy",
    "ETXTBSY": "text file busy",
    "EFBIG": "file too large",
    "ENXIO": "no such device or address",
    "ENODEV": "no such device",
    "EXDEV": "cross-device link",
}

# Packages whose failures on the user's data are expected: an exception raised inside them that is
# an OSError or RuntimeError (lance's I/O and format errors) or one of pyarrow's is a data fault.
_DATA_LIBRARIES = ("lance", "lancedb", "pyarrow")


def _os_fault(e: OSError) -> str | None:
    import errno as errno_names

    name = errno_names.errorcode.get(e.errno or -1)
    if name not in _OS_FAULTS:
        return None
    what = e.strerror or _OS_FAULTS[name]
    if name == "ENOSPC":
        what = _OS_FAULTS[name]
    where = [str(p) for p in (e.filename, e.filename2) if p is not None]
    return f"{what}: {' -> '.join(where)}" if where else what


def _raised_in(e: BaseException, packages: tuple[str, ...]) -> str | None:
    """The package among ``packages`` whose code raised ``e`` (innermost Python frame), if any."""
    import os

    tb = e.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    module = type(e).__module__.split(".")[0]
    if module in packages:
        return module
    if last is None:
        return None
    parts = last.replace(os.sep, "/").split("/")
    return next((p for p in packages if p in parts), None)


def explain(e: BaseException, where: str | None = None) -> str | None:
    """The one-line message for an expected failure, or None for a bug (which keeps its traceback).

    Why a list: the CLI must not hide a genuine bug behind a polite line, so only the failures a
    user's environment or data cause are translated: dec2vec's own errors, operating-system faults,
    damaged model files, malformed JSON/YAML/UTF-8, and the index libraries' data errors.
    ``where``: the index folder the command works on, named in an index library's message.
    """
    import json

    if isinstance(e, Dec2VecError):
        return str(e)
    if isinstance(e, UnicodeDecodeError):
        return f"not valid UTF-8 text ({e.reason} at byte {e.start}); give a UTF-8 text file"
    if isinstance(e, json.JSONDecodeError):
        return f"malformed JSON ({e.msg} at line {e.lineno}, column {e.colno})"
    if _is_instance_of(e, "yaml", "YAMLError"):
        return f"malformed YAML ({e})"
    if _is_instance_of(e, "safetensors", "SafetensorError"):
        if "serializ" in str(e).lower() and "deserializ" not in str(e).lower():  # a write: the disk, not the file
            return f"writing a weights file failed; is the disk full? ({e})"
        return f"a model file is damaged or truncated ({e}); copy or save the model again"
    library = _raised_in(e, _DATA_LIBRARIES)
    if library is not None and (
        isinstance(e, (OSError, RuntimeError)) or _is_instance_of(e, "pyarrow", "ArrowException")
    ):
        fault = _os_fault(e) if isinstance(e, OSError) else None
        text = (fault or str(e)).split(", /rustc/")[0].split(", /root/.cargo/")[0]  # no Rust source paths
        on = f" on the index at {where} (damaged, or the disk is full?)" if where else ""
        return f"{library} failed{on}: {text}"
    if isinstance(e, OSError):
        return _os_fault(e)
    if isinstance(e, RuntimeError) and _raised_in(e, ("torch",)) and "write failed" in str(e):
        return f"writing a file failed; is the disk full? ({' '.join(str(e).split())})"  # torch.save's ENOSPC
    return None


def _is_instance_of(e: BaseException, module: str, name: str) -> bool:
    """``isinstance(e, module.name)`` without importing ``module`` (the CLI stays light when it is unused)."""
    import sys

    mod = sys.modules.get(module)
    if mod is None:
        return False
    cls = getattr(mod, name, None)
    if cls is None and module == "pyarrow":
        cls = getattr(getattr(mod, "lib", None), name, None)
    return isinstance(cls, type) and isinstance(e, cls)
