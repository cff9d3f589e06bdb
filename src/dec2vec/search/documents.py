"""Input files -> documents: a whole .txt/.md file, or one row of a .jsonl/.csv/.parquet file.

Every document is read and checked before anything is embedded, so a bad row stops the build with
its file and line (``path:LINE``) instead of half-way through. A row's other columns become its
metadata. Paths are stored absolute, so an index does not depend on the directory it was built from.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

WHOLE_FILE_SUFFIXES = (".txt", ".md")
ROW_SUFFIXES = (".jsonl", ".csv", ".parquet")
SUFFIXES = WHOLE_FILE_SUFFIXES + ROW_SUFFIXES


@dataclass(frozen=True)
class Document:
    path: str  # absolute path of the file
    row: int | None  # 1-based line (.jsonl, .csv) or row number (.parquet); None for a whole file
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable identity within the index: the file, and the row for row files."""
        return self.path if self.row is None else f"{self.path}:{self.row}"

    def content_hash(self, salt: str = "") -> str:
        """sha256 of text, metadata and ``salt`` (the chunk settings): a change to any re-embeds the document."""
        payload = json.dumps([self.text, self.metadata, salt], sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def collect_files(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files to index: named files as given, folders searched recursively for supported suffixes.

    A missing path, an unsupported named file or a folder with nothing to index is an InputError.
    Hidden files and folders (a leading dot) inside a folder are skipped.
    """
    files: list[Path] = []
    inputs = list(inputs)
    if not inputs:
        raise InputError("no input given: pass files or folders with --input")
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists():
            raise InputError(f"input path '{p}' does not exist")
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and f.suffix.lower() in SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise InputError(f"input folder '{p}' holds no {', '.join(SUFFIXES)} files")
            files.extend(found)
        elif p.suffix.lower() in SUFFIXES:
            files.append(p)
        else:
            raise InputError(f"{p}: unsupported input type '{p.suffix}'; use one of {', '.join(SUFFIXES)}")
    unique: dict[Path, None] = {}
    for f in files:
        unique.setdefault(f.resolve(), None)
    return list(unique)


def _check_text(text: Any, where: str, text_field: str) -> str:
    if not isinstance(text, str):
        raise InputError(f"{where}: field '{text_field}' should be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{where}: the text is empty or whitespace-only")
    return text


def _whole_file(path: Path) -> Iterator[Document]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if not text.strip():
        raise InputError(f"{path}: the file is empty or whitespace-only")
    yield Document(str(path), None, text)


def _row(obj: dict[str, Any], where: str, path: Path, row: int, text_field: str) -> Document:
    if text_field not in obj:
        raise InputError(f"{where}: no '{text_field}' field (fields: {', '.join(map(str, obj)) or 'none'})")
    text = _check_text(obj[text_field], where, text_field)
    meta = {str(k): v for k, v in obj.items() if k != text_field}
    return Document(str(path), row, text, meta)


def _jsonl(path: Path, text_field: str) -> Iterator[Document]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            where = f"{path}:{n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
            if isinstance(obj, str):
                yield Document(str(path), n, _check_text(obj, where, text_field))
            elif isinstance(obj, dict):
                yield _row(obj, where, path, n, text_field)
            else:
                raise InputError(f"{where}: expected a JSON object or string, got {type(obj).__name__}")


def _csv(path: Path, text_field: str) -> Iterator[Document]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                return
            if text_field not in reader.fieldnames:
                raise InputError(f"{path}:1: no '{text_field}' column (columns: {', '.join(reader.fieldnames)})")
            line = reader.line_num + 1  # where the next record starts
            for rec in reader:
                where = f"{path}:{line}"
                if None in rec:
                    raise InputError(f"{where}: more fields than the header's {len(reader.fieldnames)}")
                yield _row(dict(rec), where, path, line, text_field)
                line = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise InputError(f"{path}: malformed CSV ({e})") from None


def _parquet(path: Path, text_field: str) -> Iterator[Document]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading .parquet needs pyarrow: pip install 'dec2vec[index]'") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid and OSError for damaged files
        raise InputError(f"{path}: not a readable Parquet file ({e})") from None
    names = pf.schema_arrow.names
    if text_field not in names:
        raise InputError(f"{path}: no '{text_field}' column (columns: {', '.join(names)})")
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            row += 1
            yield _row(rec, f"{path}: row {row}", path, row, text_field)


def read_inputs(inputs: Iterable[str | os.PathLike[str]], text_field: str = "text") -> dict[str, list[Document]]:
    """Every document of every input (files, folders), by file path; the first bad file or line raises."""
    return {str(f): read_documents(f, text_field) for f in collect_files(inputs)}


def read_documents(path: Path, text_field: str = "text") -> list[Document]:
    """Every document of one input file, in file order; an InputError names the bad line or row."""
    suffix = path.suffix.lower()
    if suffix in WHOLE_FILE_SUFFIXES:
        docs = list(_whole_file(path))
    elif suffix == ".jsonl":
        docs = list(_jsonl(path, text_field))
    elif suffix == ".csv":
        docs = list(_csv(path, text_field))
    elif suffix == ".parquet":
        docs = list(_parquet(path, text_field))
    else:
        raise InputError(f"{path}: unsupported input type '{path.suffix}'; use one of {', '.join(SUFFIXES)}")
    if not docs:
        raise InputError(f"{path}: no documents in the file")
    return docs
