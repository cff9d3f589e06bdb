"""Reading texts from files and writing embeddings atomically (temp file, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")


@dataclass
class TextFile:
    texts: list[str]
    lines: list[int]  # 1-based line of each text, for error messages
    path: Path

    def where(self, index: int) -> str:
        return f"{self.path}:{self.lines[index]}"


def read_texts(path: str | os.PathLike[str], field: str = "text") -> TextFile:
    """Texts from ``.txt`` (one per line) or ``.jsonl`` (objects with ``field``, or JSON strings).

    A blank line in a .txt file, malformed JSON or a missing field is an InputError naming file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file '{p}' does not exist")
    jsonl = p.suffix == ".jsonl"
    if not jsonl and p.suffix not in (".txt", ""):
        raise InputError(f"{p}: unsupported input type '{p.suffix}'; use .txt (one text per line) or .jsonl")
    texts: list[str] = []
    lines: list[int] = []
    with open(p, "rb") as f:
        for n, raw_bytes in enumerate(f, start=1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{p}:{n}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
            line = raw.rstrip("\n").rstrip("\r")
            if jsonl:
                if not line.strip():
                    continue  # blank lines between records are harmless in JSONL
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
            texts.append(text)
            lines.append(n)
    if not texts:
        raise InputError(f"{p}: no texts in the file")
    return TextFile(texts, lines, p)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it


@contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """A temporary path beside ``dest`` that replaces it only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file 0600; give it the mode a plain open() would (or the replaced file's)
        mode = dest.stat().st_mode & 0o777 if dest.exists() else 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """The output path, if its type is one we write; called before a long job as well as at the end."""
    dest = Path(path)
    if dest.suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"{dest}: unsupported output type '{dest.suffix}'; use one of {', '.join(OUTPUT_SUFFIXES)}")
    return dest


def write_embeddings(path: str | os.PathLike[str], embeddings: np.ndarray, texts: list[str] | None = None) -> None:
    """Write (n, D) float32 embeddings as .npy, .jsonl (index, text, embedding) or .parquet."""
    dest = check_output_path(path)
    with atomic_path(dest) as tmp:
        if dest.suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, embeddings.astype(np.float32, copy=False))
        elif dest.suffix == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                for i, row in enumerate(embeddings):
                    rec = {"index": i, **({"text": texts[i]} if texts else {}), "embedding": row.tolist()}
                    f.write(json.dumps(rec) + "\n")
        else:
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise InputError("writing .parquet needs pyarrow: pip install 'dec2vec[io]'") from None
            n, dim = embeddings.shape
            flat = pa.array(embeddings.astype(np.float32, copy=False).reshape(-1))
            cols = {"index": pa.array(np.arange(n)), "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)}
            if texts:
                cols["text"] = pa.array(texts)
            pq.write_table(pa.table(cols), tmp)
