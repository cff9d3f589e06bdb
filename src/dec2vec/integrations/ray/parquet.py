"""``embed_parquet``: local parquet files in, the same rows with an embedding column out, through Ray actors."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import ray.data

from ...errors import Dec2VecError
from .batch import embed_dataset
from .files import AtomicParquetWriter, Part, check_parquet_texts, input_files, plan

log = logging.getLogger("dec2vec.integrations.ray")  # the package's logger, whichever module logs


@dataclass
class EmbedParquetResult:
    """What :func:`embed_parquet` did: rows embedded in this run, files written and files already done."""

    rows: int = 0
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    empty: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _user_error(exc: BaseException) -> Dec2VecError | None:
    """The dec2vec error an actor raised, unwrapped from Ray's task and user-code exceptions."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        cause = getattr(cur, "cause", None)
        if isinstance(cause, Dec2VecError):
            return cause
        if isinstance(cur, Dec2VecError) and type(cur).__module__.startswith("dec2vec"):
            return cur
        cur = cur.__cause__ or (cause if isinstance(cause, BaseException) else None)
    return None


def _settle_fsspec_http() -> None:
    """Make fsspec's HTTP module fail to import the same way every time when aiohttp is absent.

    Ray Data asks, from several driver threads at once, whether a path is on fsspec's HTTP filesystem,
    and catches only ModuleNotFoundError. Two threads importing the failing module together make
    one of them see a half-made module and raise a plain ImportError, which fails the read. A None
    entry in ``sys.modules`` makes every import of it raise ModuleNotFoundError at once, as it would
    anyway without aiohttp.
    """
    import importlib.util
    import sys

    if "fsspec.implementations.http" not in sys.modules and importlib.util.find_spec("aiohttp") is None:
        sys.modules["fsspec.implementations.http"] = None  # type: ignore[assignment]


def _route(batches: Iterator[pa.Table], parts: list[Part], drop: list[str]) -> Iterator[tuple[Part, pa.Table]]:
    """Cut the ordered stream of rows into each input file's rows, by the files' row counts.

    ``drop`` is Ray's ``path`` column when we asked for it: it checks the cut, then goes.
    """
    todo = [p for p in parts if p.rows]
    k, need = 0, todo[0].rows if todo else 0
    for table in batches:
        while table.num_rows:
            if k >= len(todo):
                raise RuntimeError("Ray returned more rows than the input files hold")
            head, table = table.slice(0, need), table.slice(need)
            if drop:
                paths = set(head.column(drop[0]).to_pylist())
                if any(Path(p).resolve() != todo[k].source.resolve() for p in paths):
                    raise RuntimeError(f"rows of {sorted(paths)} came where {todo[k].source} was expected")
                head = head.drop_columns(drop)
            yield todo[k], head
            need -= head.num_rows
            if need == 0:
                k += 1
                need = todo[k].rows if k < len(todo) else 0
    if k < len(todo):
        raise RuntimeError(f"Ray returned fewer rows than the input files hold (stopped in {todo[k].source})")


def embed_parquet(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    model: str | os.PathLike[str],
    *,
    column: str = "text",
    output_column: str = "embedding",
    num_actors: int = 1,
    batch_size: int = 256,
    num_cpus: float = 1,
    num_gpus: float = 0,
    overwrite: bool = False,
    validate: bool = True,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> EmbedParquetResult:
    """Embed ``column`` of local parquet files with Ray actors; keep every other column, in input order.

    ``input_path`` is a .parquet file or a folder of them (read recursively). ``output_path``
    ending in ``.parquet`` gets all rows in one file; otherwise it is a folder mirroring the input
    files. Outputs are written atomically and outputs already there are skipped (so a stopped job
    resumes file by file) unless ``overwrite``. ``progress`` is called with the row count of each
    batch as it is written. ``options`` go to :func:`embed_dataset` (``udf``) and :class:`EmbedBatch`
    (``instruction``, ``threads``...). Ray is started locally when no ``ray.init`` was called
    (``RAY_ADDRESS`` set in the environment joins that cluster).
    """
    start = time.perf_counter()
    src, dest = Path(input_path).expanduser(), Path(output_path).expanduser()
    parts = plan(src, dest, input_files(src))
    result = EmbedParquetResult()
    if dest.suffix == ".parquet":  # one output file: it is either done or redone whole
        todo = [] if dest.exists() and not overwrite else parts
        result.skipped = [] if todo else [dest]
    else:
        todo = [p for p in parts if overwrite or not p.dest.exists()]
        result.skipped = [p.dest for p in parts if p not in todo]
    result.empty = [p.source for p in todo if not p.rows]
    for p in result.empty:
        log.warning("%s has no rows: nothing is written for it", p)
    todo = [p for p in todo if p.rows]
    if not todo:
        result.seconds = time.perf_counter() - start
        return result
    if validate:
        for part in todo:
            check_parquet_texts(part.source, column, output_column)
    if not ray.is_initialized():
        ray.init()
    _settle_fsspec_http()
    check = "path" not in pq.ParquetFile(todo[0].source).schema_arrow.names  # Ray's path column, unless taken
    current: AtomicParquetWriter | None = None
    try:
        ds = ray.data.read_parquet([str(p.source.resolve()) for p in todo], include_paths=check)
        # blocks of batch_size rows: a small file is one block, which only one actor could work on
        ds = ds.repartition(target_num_rows_per_block=batch_size)
        ds = embed_dataset(
            ds,
            model,
            num_actors=num_actors,
            batch_size=batch_size,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            column=column,
            output_column=output_column,
            **options,
        )
        ds.context.execution_options.preserve_order = True  # rows come back in input order, to be cut by file
        batches = ds.iter_batches(batch_format="pyarrow", batch_size=None)
        for part, table in _route(batches, todo, ["path"] if check else []):
            if current is not None and current.dest != part.dest:
                current.commit()
                result.written.append(current.dest)
                log.info("wrote %s", current.dest)
                current = None
            if current is None:
                current = AtomicParquetWriter(part.dest)
            current.write(table)
            result.rows += table.num_rows
            if progress is not None:
                progress(table.num_rows)
        if current is not None:
            current.commit()
            result.written.append(current.dest)
            log.info("wrote %s", current.dest)
            current = None
    except BaseException as e:
        if current is not None:
            current.abort(e)
        cause = _user_error(e)
        if cause is not None and cause is not e:
            raise cause from None
        raise
    result.seconds = time.perf_counter() - start
    return result
