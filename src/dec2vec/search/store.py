"""The LanceDB side of an index: two tables, a JSON description, and a build lock.

- ``chunks``: one row per chunk (id, text, source, metadata, hashes, vector).
- ``documents``: one row per *committed* document (key, path, content hash, chunk count). It is
  written only after all of the document's chunks are in ``chunks``, so it is the commit record: a
  chunk whose document has no row here (or a row with another hash) is an orphan of an interrupted
  build, and the next build deletes it (after keeping its vector for reuse).
- ``dec2vec-index.json``: the model's identity and reference, and the chunk settings, written atomically.

Each LanceDB ``add``/``delete`` is an atomic commit (a new table version), so a crash at any point
leaves the tables at the last commit; the build's order of commits (see :mod:`.indexer`) keeps the
invariant "a document row exists => exactly its chunks are stored".
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..foundations.files import atomic_path

CHUNKS = "chunks"
DOCUMENTS = "documents"
META_NAME = "dec2vec-index.json"
LOCK_NAME = ".dec2vec-build.lock"
FORMAT = 1
IN_BATCH = 500  # keys per SQL IN (...) list
HIT_COLUMNS = ["id", "doc_key", "path", "row", "chunk", "source", "text", "metadata"]


def sql_str(s: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + s.replace("'", "''") + "'"


def _in_filter(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(sql_str(v) for v in values)})"


def _batches(values: list[str], n: int = IN_BATCH) -> Iterator[list[str]]:
    for i in range(0, len(values), n):
        yield values[i : i + n]


def chunk_schema(dim: int):  # -> pa.Schema
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string()),  # doc_key#chunk
            pa.field("doc_key", pa.string()),
            pa.field("path", pa.string()),
            pa.field("row", pa.int64()),  # null for a whole-file document
            pa.field("chunk", pa.int32()),
            pa.field("source", pa.string()),  # path[:row]#chunk, for people
            pa.field("text", pa.string()),
            pa.field("metadata", pa.string()),  # JSON object: the row's other fields
            pa.field("doc_hash", pa.string()),  # the document's content hash (text, metadata, chunk settings)
            pa.field("hash", pa.string()),  # sha256 of the chunk text: vectors are reused by it
            pa.field("start", pa.int64()),  # character span of the chunk in the document's text
            pa.field("end", pa.int64()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def documents_schema():  # -> pa.Schema
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("doc_key", pa.string()),
            pa.field("path", pa.string()),
            pa.field("row", pa.int64()),
            pa.field("doc_hash", pa.string()),
            pa.field("chunks", pa.int32()),
        ]
    )


class Store:
    """An index folder: open it (``create=False`` refuses a missing one) and read or change its tables."""

    def __init__(self, path: str | os.PathLike[str], create: bool = True) -> None:
        self.path = Path(path).expanduser().resolve()
        if not create and not (self.path / META_NAME).is_file():
            raise InputError(f"no index at {self.path}: build one with `dec2vec index build --db {self.path} ...`")
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"--db {self.path} is a file; an index is a folder")
        try:
            import lancedb
        except ImportError:
            raise InputError("the index needs LanceDB: pip install 'dec2vec[index]'") from None
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        self.db = lancedb.connect(str(self.path))
        self._chunks: Any = None
        self._docs: Any = None

    # ---- description ---------------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.path / META_NAME

    def read_meta(self) -> dict[str, Any] | None:
        if not self.meta_path.is_file():
            return None
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # ValueError: malformed JSON or not UTF-8
            raise InputError(f"{self.meta_path}: unreadable index description ({e})") from None
        if not isinstance(meta, dict):
            raise InputError(f"{self.meta_path}: the index description is not a JSON object; rebuild the index")
        if meta.get("format") != FORMAT:
            raise InputError(f"{self.meta_path}: index format {meta.get('format')!r}, this dec2vec reads {FORMAT}")
        shapes = {"model": (dict,), "model_ref": (str, type(None)), "chunking": (dict,)}
        for key, kinds in shapes.items():
            if not isinstance(meta.get(key), kinds):
                raise InputError(f"{self.meta_path}: damaged index description ({key}: {meta.get(key)!r}); rebuild it")
        chunking = meta["chunking"]
        if set(chunking) != {"size", "overlap", "unit"} or not all(
            isinstance(chunking[k], int) for k in ("size", "overlap")
        ):
            raise InputError(f"{self.meta_path}: damaged index description (chunking: {chunking!r}); rebuild it")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        with atomic_path(self.meta_path) as tmp:
            tmp.write_text(json.dumps({"format": FORMAT, **meta}, indent=2) + "\n", encoding="utf-8")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One build at a time per index (searches need no lock: they read committed versions)."""
        with open(self.path / LOCK_NAME, "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EACCES):
                    raise InputError(f"another build is running on the index at {self.path}") from None
                raise
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # ---- tables ----------------------------------------------------------------------------------
    def _open(self, name: str) -> Any | None:
        try:
            return self.db.open_table(name)
        except ValueError:  # LanceDB's "Table 'x' was not found"
            return None

    def chunks(self, dim: int | None = None) -> Any | None:
        """The chunks table; created (empty) when ``dim`` is given and it does not exist yet."""
        if self._chunks is None:
            self._chunks = self._open(CHUNKS)
            if self._chunks is None and dim is not None:
                self._chunks = self.db.create_table(CHUNKS, schema=chunk_schema(dim))
        return self._chunks

    def documents(self, create: bool = False) -> Any | None:
        if self._docs is None:
            self._docs = self._open(DOCUMENTS)
            if self._docs is None and create:
                self._docs = self.db.create_table(DOCUMENTS, schema=documents_schema())
        return self._docs

    def count(self) -> int:
        t = self.chunks()
        return 0 if t is None else int(t.count_rows())

    def count_documents(self) -> int:
        t = self.documents()
        return 0 if t is None else int(t.count_rows())

    def _scan(self, table: Any, columns: list[str], where: str | None = None):  # -> pa.Table
        q = table.search().select(columns).limit(None)
        if where:
            q = q.where(where)
        return q.to_arrow()

    def committed(self) -> dict[str, tuple[str, str]]:
        """doc_key -> (path, doc_hash) of every committed document."""
        t = self.documents()
        if t is None:
            return {}
        rows = self._scan(t, ["doc_key", "path", "doc_hash"]).to_pydict()
        return {k: (p, h) for k, p, h in zip(rows["doc_key"], rows["path"], rows["doc_hash"], strict=True)}

    def orphan_keys(self, committed: dict[str, tuple[str, str]]) -> list[str]:
        """Keys of documents with chunks stored but no matching commit row (an interrupted build's work)."""
        t = self.chunks()
        if t is None:
            return []
        rows = self._scan(t, ["doc_key", "doc_hash"]).to_pydict()
        return sorted(
            {
                k
                for k, h in zip(rows["doc_key"], rows["doc_hash"], strict=True)
                if k not in committed or committed[k][1] != h
            }
        )

    def vectors_of(self, doc_keys: list[str]) -> dict[str, np.ndarray]:
        """chunk hash -> vector for the chunks of these documents (to reuse rather than re-embed)."""
        t = self.chunks()
        out: dict[str, np.ndarray] = {}
        if t is None:
            return out
        for part in _batches(doc_keys):
            got = self._scan(t, ["hash", "vector"], _in_filter("doc_key", part))
            if got.num_rows:
                vecs = np.asarray(got.column("vector").combine_chunks().flatten(), dtype=np.float32)
                vecs = vecs.reshape(got.num_rows, -1)  # (n, D)
                out.update(zip(got.column("hash").to_pylist(), vecs, strict=True))
        return out

    def forget(self, doc_keys: list[str]) -> None:
        """Uncommit these documents, then delete their chunks: never a commit row without its chunks."""
        if not doc_keys:
            return
        docs, chunks = self.documents(), self.chunks()
        for part in _batches(doc_keys):
            if docs is not None:
                docs.delete(_in_filter("doc_key", part))
        for part in _batches(doc_keys):
            if chunks is not None:
                chunks.delete(_in_filter("doc_key", part))

    def add_chunks(self, rows: dict[str, list[Any]], vectors: np.ndarray) -> None:
        """Append chunk rows (one commit); ``vectors`` is (n, D) float32 in row order."""
        import pyarrow as pa

        table = self.chunks(vectors.shape[1])
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        cols = {**rows, "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])}
        table.add(pa.Table.from_pydict(cols, schema=chunk_schema(vectors.shape[1])))

    def commit_documents(self, rows: dict[str, list[Any]]) -> None:
        """Record documents as complete (one commit); called after their chunks are added."""
        import pyarrow as pa

        self.documents(create=True).add(pa.Table.from_pydict(rows, schema=documents_schema()))

    def paths(self) -> set[str]:
        return {p for p, _ in self.committed().values()}

    def optimize(self) -> None:
        """Merge the small fragments that batch commits leave (faster scans); old versions are kept for a while."""
        for t in (self.chunks(), self.documents()):
            if t is not None:
                t.optimize()

    def search(self, vector: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The ``k`` nearest chunks by cosine distance (exact unless an ANN index exists)."""
        t = self.chunks()
        if t is None:
            return []
        q = t.search(np.asarray(vector, dtype=np.float32)).distance_type("cosine").limit(k)
        return q.select([*HIT_COLUMNS, "_distance"]).to_list()

    def has_vector_index(self) -> bool:
        t = self.chunks()
        return t is not None and any("vector" in getattr(i, "columns", []) for i in t.list_indices())

    def create_vector_index(self) -> None:
        """An ANN index (IVF partitions + HNSW over scalar-quantised vectors), cosine, for large tables."""
        t = self.chunks()
        if t is not None:
            t.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_HNSW_SQ", replace=True)

    def sample_vectors(self, n: int) -> np.ndarray:
        """The vectors of up to ``n`` chunks spread evenly over the table (the same rows for the same table): (m, D)."""
        t = self.chunks()
        total = 0 if t is None else self.count()
        if total == 0:
            return np.zeros((0, 0), dtype=np.float32)
        m = min(n, total)
        offsets = sorted({round(i * (total - 1) / max(m - 1, 1)) for i in range(m)})
        got = t.take_offsets(offsets).select(["vector"]).to_arrow()
        vecs = np.asarray(got.column("vector").combine_chunks().flatten(), dtype=np.float32)
        return vecs.reshape(got.num_rows, -1)  # (m, D)
