"""Bulk embedding with Ray Data: a picklable batch callable, a dataset helper, and parquet in -> parquet out.

:class:`EmbedBatch` is what ``Dataset.map_batches`` runs in each actor. It holds only its spec, so
Ray ships it cheaply; the model is loaded on the first batch an actor sees and kept for the
actor's life. Inside a batch, :meth:`Embedder.encode` does its own length-sorted token-budget
batching, so Ray's ``batch_size`` only sets how many rows travel per call.

:func:`embed_parquet` is the end-to-end job for local parquet files: texts are checked on the
driver first (an error names file and row before any actor starts), rows come back in input
order, and each output file is written atomically, so a rerun skips the files already done.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import ray
    import ray.data
except ImportError as e:  # the extra is optional: say how to get it, not just which module is missing
    raise ImportError(
        f"dec2vec.integrations.ray needs Ray Data and pyarrow ({e.name} is missing): pip install 'dec2vec[ray]'"
    ) from e

import numpy as np

from ..errors import ConfigError, Dec2VecError, InputError
from ..io import atomic_path

log = logging.getLogger(__name__)

__all__ = ["EmbedBatch", "EmbedParquetResult", "EmbedSpec", "embed_dataset", "embed_parquet"]


@dataclass(frozen=True)
class EmbedSpec:
    """Everything an actor needs to rebuild the embedder and embed a batch; small and picklable."""

    model: str
    column: str = "text"
    output_column: str = "embedding"
    instruction: str | None = None
    normalize: bool = True
    max_tokens: int | None = None
    max_batch_size: int = 256
    truncate: bool = True
    device: str | None = None
    dtype: str | None = None
    threads: int | None = None


class EmbedBatch:
    """A ``map_batches`` callable: adds ``output_column`` (float32 vectors) computed from ``column``.

    Pass the class, not an instance, so Ray builds one per actor and the model loads once per actor::

        ds.map_batches(EmbedBatch, fn_constructor_args=("mean",), batch_format="pyarrow",
                       compute=ray.data.ActorPoolStrategy(size=2), batch_size=256)

    Batches may be a ``pyarrow.Table`` (the vectors become a fixed-size list of float32, the type
    parquet and LanceDB read as vectors), a ``pandas.DataFrame`` or a dict of numpy arrays
    (``batch_format="numpy"``; the vectors become a 2-D array).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        column: str = "text",
        output_column: str = "embedding",
        instruction: str | None = None,
        normalize: bool = True,
        max_tokens: int | None = None,
        max_batch_size: int = 256,
        truncate: bool = True,
        device: str | None = None,
        dtype: str | None = None,
        threads: int | None = None,
    ) -> None:
        if column == output_column:
            raise ConfigError(f"column and output_column are both '{column}'; the embeddings need their own column")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self.spec = EmbedSpec(
            os.fspath(model),
            column,
            output_column,
            instruction,
            normalize,
            max_tokens,
            max_batch_size,
            truncate,
            device,
            dtype,
            threads,
        )
        self._embedder: Any = None
        self.loads = 0  # how many times this instance loaded its model: once, however many batches

    # ---- pickling: the spec travels, the model never does ---------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"spec": asdict(self.spec)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = EmbedSpec(**state["spec"])
        self._embedder = None
        self.loads = 0

    # ---- the model --------------------------------------------------------------------------------
    @property
    def embedder(self) -> Any:
        """The embedder, loaded on first use and then kept (one load per actor)."""
        if self._embedder is None:
            self._embedder = self._load()
            self.loads += 1
        return self._embedder

    def _load(self) -> Any:
        import torch

        from ..embedder import Embedder

        if self.spec.threads is not None:  # Ray sets OMP threads = the actor's num_cpus; this overrides it
            torch.set_num_threads(self.spec.threads)
        start = time.perf_counter()
        emb = Embedder.from_pretrained(self.spec.model, device=self.spec.device, dtype=self.spec.dtype)
        seconds = time.perf_counter() - start
        log.info("loaded %s in %.1fs (pid %d, %s)", self.spec.model, seconds, os.getpid(), emb.device)
        return emb

    # ---- one batch -------------------------------------------------------------------------------
    def embed(self, texts: list[Any]) -> np.ndarray:
        """(n, D) float32 embeddings of one batch's texts; an InputError names the first bad row."""
        spec = self.spec
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                what = "null" if t is None else f"a {type(t).__name__}"
                raise InputError(f"row {i} of the batch: column '{spec.column}' holds {what}, not a string", index=i)
            if not t.strip():
                raise InputError(f"row {i} of the batch: column '{spec.column}' is empty or whitespace-only", index=i)
        emb = self.embedder
        if not texts:
            return np.empty((0, emb.embedding_dim), dtype=np.float32)
        return emb.encode(
            texts,
            instruction=spec.instruction,
            normalize=spec.normalize,
            max_tokens=spec.max_tokens,
            max_batch_size=spec.max_batch_size,
            truncate=spec.truncate,
            show_progress=False,
        )

    def __call__(self, batch: Any) -> Any:
        col, out = self.spec.column, self.spec.output_column
        if isinstance(batch, pa.Table):
            _check_columns(batch.column_names, col, out)
            vecs = self.embed(batch.column(col).to_pylist())  # (n, D)
            return batch.append_column(out, vectors_to_arrow(vecs))
        if isinstance(batch, dict):
            _check_columns(list(batch), col, out)
            vecs = self.embed(np.asarray(batch[col]).tolist())  # numpy strings -> str
            return {**batch, out: vecs}
        if type(batch).__module__.startswith("pandas"):
            _check_columns(list(batch.columns), col, out)
            vecs = self.embed(batch[col].tolist())
            return batch.assign(**{out: list(vecs)})
        kind = type(batch).__name__
        raise InputError(f"unsupported batch type {kind}: use batch_format='pyarrow', 'pandas' or 'numpy'")


def _check_columns(names: Sequence[str], column: str, output_column: str) -> None:
    if column not in names:
        raise InputError(f"no column '{column}' to embed; the columns are: {', '.join(names) or 'none'}")
    if output_column in names:
        raise InputError(f"column '{output_column}' already exists; choose another output_column")


def vectors_to_arrow(vecs: np.ndarray) -> pa.FixedSizeListArray:
    """(n, D) float32 -> a fixed-size list array: parquet's and LanceDB's vector type."""
    flat = pa.array(np.ascontiguousarray(vecs, dtype=np.float32).reshape(-1))  # (n * D,)
    return pa.FixedSizeListArray.from_arrays(flat, vecs.shape[1])


def embed_dataset(
    ds: ray.data.Dataset,
    model: str | os.PathLike[str],
    *,
    num_actors: int = 1,
    batch_size: int = 256,
    num_cpus: float = 1,
    num_gpus: float = 0,
    udf: type[EmbedBatch] = EmbedBatch,
    **options: Any,
) -> ray.data.Dataset:
    """``ds`` with an embedding column, computed by a fixed pool of ``num_actors`` actors (lazy, like any map).

    ``options`` are :class:`EmbedBatch`'s (``column``, ``instruction``, ``threads``...); ``udf`` may
    be a subclass of it (to post-process vectors, say). Each actor reserves ``num_cpus`` CPUs and
    ``num_gpus`` GPUs. On a fixed cluster, leave at least one CPU free for Ray's read tasks: an
    actor pool that holds every CPU waits for them forever. An error in a batch reaches the caller
    as the error itself (an :class:`InputError` naming the row), not as Ray's generic wrapper.
    """
    if num_actors < 1:
        raise ConfigError(f"num_actors must be at least 1, got {num_actors}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    udf(model, **options)  # fail on bad options here, not in every actor
    if ray.is_initialized():
        total = ray.cluster_resources().get("CPU", 0.0)
        if num_actors * num_cpus > total - 1:
            raise ConfigError(
                f"{num_actors} actor(s) x {num_cpus} CPU leave no CPU of the cluster's {total:g} for reading; "
                "use fewer actors or lower num_cpus (set `threads` to give each actor more torch threads)"
            )
    gpus: dict[str, float] = {"num_gpus": num_gpus} if num_gpus else {}
    out = ds.map_batches(
        udf,
        fn_constructor_args=(os.fspath(model),),
        fn_constructor_kwargs=options,
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        batch_size=batch_size,
        batch_format="pyarrow",
        num_cpus=num_cpus,
        **gpus,
    )
    out.context.raise_original_map_exception = True  # this dataset only: Datasets own a copy of the context
    return out


# ---- parquet in -> parquet out ------------------------------------------------------------------------
@dataclass
class EmbedParquetResult:
    """What :func:`embed_parquet` did: rows embedded in this run, files written and files already done."""

    rows: int = 0
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    empty: list[Path] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Part:
    source: Path
    dest: Path
    rows: int


def _input_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise InputError(f"input '{src}' does not exist")
    files = sorted(p for p in src.rglob("*.parquet") if not any(s.startswith(".") for s in p.relative_to(src).parts))
    if not files:
        raise InputError(f"{src}: no .parquet files in the folder")
    return files


def _plan(src: Path, dest: Path, files: list[Path]) -> list[_Part]:
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
        parts.append(_Part(f, target, pq.ParquetFile(f).metadata.num_rows))
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


class _AtomicParquetWriter:
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


def _route(batches: Iterator[pa.Table], parts: list[_Part], drop: list[str]) -> Iterator[tuple[_Part, pa.Table]]:
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
    parts = _plan(src, dest, _input_files(src))
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
    current: _AtomicParquetWriter | None = None
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
                current = _AtomicParquetWriter(part.dest)
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
