"""The local parquet files of a job: which to read, where each goes, a check of their texts, atomic writes.

Only pyarrow here: everything in this module runs on the driver, before and after Ray.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...errors import InputError
from ...foundations.files import atomic_path


@dataclass
class Part:
    """One input file, the output its rows go to, and how many rows it holds."""

    source: Path
    dest: Path
    rows: int


def input_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise InputError(f"input '{src}' does not exist")
    files = sorted(p for p in src.rglob("*.parquet") if not any(s.startswith(".") for s in p.relative_to(src).parts))
    if not files:
        raise InputError(f"{src}: no .parquet files in the folder")
    return files


def plan(src: Path, dest: Path, files: list[Path]) -> list[Part]:
    """Each input file with its output: one output file (``dest`` ends in .parquet), or a mirrored folder."""
    single = dest.suffix == ".parquet"
    if not single and src.is_dir() and (dest == src or src in dest.parents):
        raise InputError(f"output folder '{dest}' is inside the input folder '{src}'; a rerun would read it back")
    if not single and src.is_file() and dest == src.parent:
        raise InputError(f"output folder '{dest}' holds the input file; it would be overwritten")
    parts = []
    for f in files:
        target = dest if single else dest / (f.relative_to(src) if src.is_dir() else f.name)
        if target.resolve() == f.resolve():
            raise InputError(f"output '{target}' is the input file itself")
        parts.append(Part(f, target, pq.ParquetFile(f).metadata.num_rows))
    return parts


def _is_text_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    is_view = getattr(pa.types, "is_string_view", None)  # pyarrow >= 16
    return pa.types.is_string(t) or pa.types.is_large_string(t) or bool(is_view and is_view(t))


def check_parquet_texts(path: Path, column: str, output_column: str) -> None:
    """An InputError naming file and row for a missing column, a non-string column, a null or an empty text.

    Reads only ``column``, a row group at a time, so it is cheap beside the embedding it guards.
    """
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if column not in names:
        raise InputError(f"{path}: no column '{column}' to embed; the columns are: {', '.join(names) or 'none'}")
    if output_column in names:
        raise InputError(f"{path}: column '{output_column}' already exists; choose another output_column")
    kind = pf.schema_arrow.field(column).type
    if not _is_text_type(kind):
        raise InputError(f"{path}: column '{column}' holds {kind}, not strings")
    offset = 0
    for g in range(pf.num_row_groups):
        values = pf.read_row_group(g, columns=[column]).column(column).combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        bad = pc.or_kleene(pc.is_null(values), pc.equal(pc.utf8_trim_whitespace(values), ""))
        hits = pc.indices_nonzero(pc.fill_null(bad, True))
        if len(hits):
            i = hits[0].as_py()
            what = "null" if values[i].as_py() is None else "empty or whitespace-only"
            raise InputError(f"{path}: row {offset + i} (0-based): column '{column}' is {what}", index=offset + i)
        offset += len(values)


class AtomicParquetWriter:
    """Batches streamed into a temporary file that replaces ``dest`` only when :meth:`commit` is called."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self._cm: AbstractContextManager[Path] = atomic_path(dest)
        self._tmp = self._cm.__enter__()
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        elif not table.schema.equals(self._writer.schema, check_metadata=False):
            table = table.cast(self._writer.schema)  # blocks can differ in detail (string vs large_string)
        self._writer.write_table(table)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._cm.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        if self._writer is not None:
            self._writer.close()
        try:
            self._cm.__exit__(type(exc), exc, exc.__traceback__)  # removes the temporary file
        except BaseException:  # the generator re-raises exc; the caller is already raising it
            pass
