"""Reading texts from files and writing embeddings atomically (temp file, then rename).

The atomic writes themselves are :mod:`dec2vec.foundations.files`'s; import them from there.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .foundations.files import atomic_path, remove_stale_temps_in

OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")


@dataclass
class TextFile:
    texts: list[str]
    lines: list[int]  # 1-based line of each text, for error messages
    path: Path

    def where(self, index: int) -> str:
        return f"{self.path}:{self.lines[index]}"


STDIN = "-"


def is_stream(path: str | os.PathLike[str]) -> bool:
    """``-`` (standard input), or a path that can be read only once: a pipe, ``/dev/stdin``, ``<(cmd)``.

    Such input is read whole into memory (it cannot be read twice, as a file is checked and then
    streamed); whether it is JSONL or lines is told from its first text (:func:`read_texts`).
    """
    if os.fspath(path) == STDIN:
        return True
    if os.fspath(path).startswith(("/dev/", "/proc/")):  # /dev/stdin, /dev/fd/N: no suffix tells the format
        return os.path.exists(path) and not os.path.isdir(path)
    try:
        st = os.stat(path)
    except OSError:
        return False
    import stat

    return stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISSOCK(st.st_mode)


def _stream_lines(path: str | os.PathLike[str]) -> tuple[Path, list[bytes], bool]:
    """The lines of a stream, its name for messages, and whether it is JSONL (its first text is ``{...``)."""
    import sys

    if os.fspath(path) == STDIN:
        name, data = Path("<stdin>"), sys.stdin.buffer.read()
    else:
        name = Path(path)
        with open(name, "rb") as f:
            data = f.read()
    lines = data.splitlines(keepends=True)
    first = next((line.strip() for line in lines if line.strip()), b"")
    return name, lines, first.startswith(b"{")


def read_texts(path: str | os.PathLike[str], field: str = "text") -> TextFile:
    """Texts from ``.txt`` (one per line) or ``.jsonl`` (objects with ``field``, or JSON strings).

    Blank lines are skipped in both (a trailing one is in almost every file, and a text cannot be
    blank). Malformed JSON, a missing field or an empty JSON text is an InputError naming file and
    line, and so is a file without any text. ``-`` (or a pipe such as ``/dev/stdin``) reads standard
    input: JSONL when its first text starts with ``{``, else one text per line.
    """
    p = Path(path)
    texts: list[str] = []
    lines: list[int] = []
    if is_stream(path):
        p, raw, jsonl = _stream_lines(path)
        pairs: Iterator[tuple[int, str]] = _parse_lines(p, enumerate(raw, start=1), jsonl, field)
    else:
        pairs = iter_texts(p, field)
    for n, text in pairs:
        texts.append(text)
        lines.append(n)
    if not texts:
        raise InputError(f"{p}: no texts in the file")
    return TextFile(texts, lines, p)


def iter_texts(path: str | os.PathLike[str], field: str = "text") -> Iterator[tuple[int, str]]:
    """(1-based line, text) of every text of a ``.txt`` or ``.jsonl`` file, read lazily.

    For files too large to hold: memory stays flat. Errors are those of :func:`read_texts`.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"input '{p}' is a directory; give a .txt (one text per line) or .jsonl file")
    if not p.is_file():
        raise InputError(f"input file '{p}' does not exist")
    jsonl = p.suffix == ".jsonl"
    if not jsonl and p.suffix not in (".txt", ""):
        raise InputError(f"{p}: unsupported input type '{p.suffix}'; use .txt (one text per line) or .jsonl")
    try:
        with open(p, "rb") as f:
            yield from _parse_lines(p, enumerate(f, start=1), jsonl, field)
    except OSError as e:  # unreadable (permission), or a read error
        raise InputError(f"input file '{p}': cannot read it ({e.strerror or e})") from None


def _parse_lines(p: Path, numbered: Iterator[tuple[int, bytes]], jsonl: bool, field: str) -> Iterator[tuple[int, str]]:
    """(line, text) of numbered raw lines: the checks of :func:`iter_texts`, for a file or a stream."""
    for n, raw_bytes in numbered:
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{p}:{n}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        line = raw.rstrip("\n").rstrip("\r")
        if not line.strip():
            continue  # blank lines carry no text: between JSONL records, or at the end of a .txt file
        if jsonl:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{p}:{n}: malformed JSON ({e.msg} at column {e.colno})") from None
            text = obj.get(field) if isinstance(obj, dict) else obj
            if isinstance(obj, dict) and field not in obj:
                raise InputError(f"{p}:{n}: no '{field}' field (fields: {', '.join(obj) or 'none'})")
        else:
            text = line
        if not isinstance(text, str):
            raise InputError(f"{p}:{n}: expected a string, got {type(text).__name__}")
        if not text.strip():
            raise InputError(f"{p}:{n}: the text is empty or whitespace-only")
        yield n, text


def count_texts(path: str | os.PathLike[str], field: str = "text") -> int:
    """Check every line of a text file and count its texts: a bad line fails before a long job starts."""
    count = sum(1 for _ in iter_texts(path, field))
    if count == 0:
        raise InputError(f"{path}: no texts in the file")
    return count


def line_of(path: str | os.PathLike[str], index: int, field: str = "text") -> int:
    """The file line of the ``index``-th text (0-based), for error messages about a streamed file."""
    for i, (n, _) in enumerate(iter_texts(path, field)):
        if i == index:
            return n
    raise IndexError(index)


def check_writable(path: str | os.PathLike[str], what: str, *, folder: bool = False) -> Path:
    """``path`` if this process can create (or replace) it; else an InputError saying why, in one line.

    Called before a model loads, so a typo in an output path fails in a second, not after the job.
    The test is a real one: a probe file is created (and removed) in the folder the write would
    start from, the nearest existing one, since permission bits do not tell (root, /proc, read-only
    mounts). ``folder``: ``path`` is a folder to write into (an index), else a file.
    """
    p = Path(path).expanduser()
    try:
        if p.is_dir() and not folder:
            raise InputError(f"{what} {p} is a directory; give a file name")
        if folder and p.exists() and not p.is_dir():
            raise InputError(f"{what} {p} is a file, not a folder")
        start = p if folder else p.parent
        existing = next((a for a in (start, *start.parents) if a.exists()), Path.cwd())
        if not existing.is_dir():
            raise InputError(f"{what} {p}: {existing} is a file, not a folder")
    except OSError as e:  # e.g. a parent folder this user may not enter
        raise InputError(f"{what} {p}: {e.strerror or e}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".dec2vec-probe-", dir=existing)
    except OSError as e:
        raise InputError(f"{what} {p}: cannot create files in {existing} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)
    return p


def first_missing(path: str | os.PathLike[str]) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (``path`` itself, or a parent), or None.

    What a failed job removes to leave the disk as it found it, when it created the folders itself.
    """
    p = Path(path).expanduser().absolute()
    if p.exists():
        return None
    while not p.parent.exists() and p.parent != p:
        p = p.parent
    return p


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """The output path, if its type is one we write and it can be written; called before a long job
    as well as at the end."""
    dest = Path(path)
    if dest.suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"{dest}: unsupported output type '{dest.suffix}'; use one of {', '.join(OUTPUT_SUFFIXES)}")
    check_writable(dest, "output")
    remove_stale_temps_in(dest.expanduser().parent)  # what a killed earlier run left beside it
    return dest


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the description of an embeddings file goes: ``vecs.npy`` -> ``vecs.npy.meta.json``."""
    return Path(f"{os.fspath(path)}.meta.json")


def write_sidecar(path: str | os.PathLike[str], facts: dict[str, Any]) -> Path:
    """Describe the embeddings file at ``path`` (model, dtype, dimension ...) beside it, atomically.

    Why beside it, for every format alike: a .npy file has no room for it, and vectors made in
    different precisions must not be mixed unknowingly (see :func:`dec2vec.device.precision_of`).
    """
    dest = sidecar_path(path)
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(facts, indent=2, default=str) + "\n", encoding="utf-8")
    return dest


def check_not_an_input(output: str | os.PathLike[str], inputs: list[str | None], flag: str = "--output") -> None:
    """Refuse an output that is one of the inputs (the same file, by inode: links and ``./x`` too).

    Why: the output replaces the file at its path when the job ends, so ``-o`` equal to ``--input``
    would silently replace the input (and every field of it the output does not carry).
    """
    out = Path(output).expanduser()
    if not out.exists():
        return
    for inp in inputs:
        if inp is None or os.fspath(inp) == STDIN:
            continue
        try:
            same = os.path.samefile(out, Path(inp).expanduser())
        except OSError:
            continue
        if same:
            raise InputError(
                f"{flag} {output} is the input file {inp}; writing it would replace the input: give another output path"
            )


def write_embeddings(path: str | os.PathLike[str], embeddings: np.ndarray, texts: list[str] | None = None) -> None:
    """Write (n, D) float32 embeddings as .npy, .jsonl (index, text, embedding) or .parquet, atomically."""
    n, dim = embeddings.shape
    with EmbeddingWriter(path, n, dim, with_texts=bool(texts)) as writer:
        writer.write(embeddings, texts)


class EmbeddingWriter:
    """Writes (n, D) embeddings block by block, so a corpus of any size never sits in memory.

    ``.npy`` gets the header of the final shape (hence ``n`` up front), then rows in order;
    ``.jsonl`` and ``.parquet`` are appended row group by row group. The file appears at ``path`` only when
    :meth:`close` succeeds (temp file, then rename); an interrupted job leaves nothing half-written.
    """

    def __init__(self, path: str | os.PathLike[str], n: int, dim: int, with_texts: bool = False) -> None:
        self.dest = check_output_path(path)
        self.n, self.dim, self.with_texts = n, dim, with_texts
        self._atomic = atomic_path(self.dest)
        self.tmp = self._atomic.__enter__()
        self.written = 0
        self._file: Any = None
        self._parquet: Any = None
        try:
            if self.dest.suffix == ".npy":
                # header for the final shape, then rows appended: plain writes, so the output never
                # sits in this process's memory (a memory map would count its dirty pages in RSS)
                self._file = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()
                header = {"descr": "<f4", "fortran_order": False, "shape": (n, dim)}
                np.lib.format.write_array_header_1_0(self._file, header)
            elif self.dest.suffix == ".jsonl":
                self._file = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            else:
                try:
                    import pyarrow  # noqa: F401
                except ImportError:
                    raise InputError("writing .parquet needs pyarrow: pip install 'dec2vec[io]'") from None
        except BaseException:
            self._abort()
            raise

    def write(self, block: np.ndarray, texts: list[str] | None = None) -> None:
        """Append rows ``written .. written + len(block)``."""
        block = block.astype(np.float32, copy=False)
        start, stop = self.written, self.written + len(block)
        if stop > self.n or block.ndim != 2 or block.shape[1] != self.dim:
            raise ValueError(f"block of shape {block.shape} does not fit rows {start}:{stop} of ({self.n}, {self.dim})")
        if self.dest.suffix == ".npy":
            self._file.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        elif self._file is not None:
            for i, row in enumerate(block):
                rec = {"index": start + i, **({"text": texts[i]} if texts else {}), "embedding": row.tolist()}
                self._file.write(json.dumps(rec) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            flat = pa.array(block.reshape(-1))
            cols = {
                "index": pa.array(np.arange(start, stop)),
                "embedding": pa.FixedSizeListArray.from_arrays(flat, self.dim),
            }
            if texts:
                cols["text"] = pa.array(texts)
            table = pa.table(cols)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table)
        self.written = stop

    def close(self) -> None:
        """Finish the file and move it into place; fewer rows than announced is an error."""
        if self.written != self.n:
            self._abort()
            raise ValueError(f"{self.dest}: {self.written} rows written, {self.n} expected")
        try:
            if self._file is not None:
                self._file.close()
            if self._parquet is not None:
                self._parquet.close()
        except BaseException:
            self._abort()
            raise
        self._atomic.__exit__(None, None, None)

    def _abort(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._parquet is not None:
            self._parquet.close()
        err = RuntimeError("aborted")
        try:
            self._atomic.__exit__(RuntimeError, err, None)
        except RuntimeError:
            pass

    def __enter__(self) -> EmbeddingWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()
