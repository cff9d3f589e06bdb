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
