"""``Index``: build a persistent chunk index from files incrementally, and search it with the same model.

A build is incremental, idempotent and crash-safe:

- Each document (a whole .txt/.md file, or one row of a .jsonl/.csv/.parquet file, keyed by file and
  row) has a content hash over its text, metadata and the chunk settings. A document whose committed
  hash matches is skipped; a changed or vanished row is removed and the new content embedded.
- Commit order per batch: chunk rows first, then the ``documents`` rows of the documents that batch
  completes. A build starts by deleting orphans (chunks of documents without a matching commit row),
  keeping their vectors in memory: a rerun after a crash re-embeds nothing that had been written.
- Vectors are reused by chunk-text hash from removed rows (a row moved down by an insert, a file
  renamed under ``prune``), since a chunk's vector depends only on its text and the (fixed) model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..embedder import Embedder, TruncationWarning
from ..errors import InputError
from .chunking import Chunk, ChunkSpec, Unit, chunk_text
from .defaults import DEFAULT_BATCH, DEFAULT_INSTRUCTION
from .documents import Document, read_inputs
from .identity import check_same_model, model_identity
from .store import Store

DEFAULT_TOKENS = ChunkSpec(256, 32, "tokens")
DEFAULT_CHARS = ChunkSpec(1000, 100, "chars")
ANN_MIN_ROWS = 100_000  # below this, exact (flat) search is fast enough and exact

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, its cosine similarity to the query, and where it came from."""

    score: float
    text: str
    source: str  # path[:row]#chunk
    path: str
    row: int | None
    chunk: int
    metadata: dict[str, Any]
    id: str

    @property
    def title(self) -> str | None:
        t = self.metadata.get("title")
        return t if isinstance(t, str) else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BuildReport:
    files: int = 0
    documents: int = 0  # documents in the inputs
    unchanged: int = 0  # skipped: committed with the same hash
    indexed: int = 0  # new or changed documents written
    removed: int = 0  # documents deleted (rows gone from a file, orphans, pruned files)
    chunks_added: int = 0
    chunks_embedded: int = 0  # chunks run through the model
    chunks_reused: int = 0  # chunks whose vector was reused by text hash
    tokens_embedded: int = 0  # backbone tokens of the embedded chunks (template included)
    truncated: int = 0  # chunks cut to the model's limit
    commits: int = 0  # batches committed
    total_documents: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    ann_index: bool = False

    def summary(self) -> str:
        rate = f", {self.chunks_embedded / self.embed_seconds:.1f} chunks/s" if self.embed_seconds > 0 else ""
        return (
            f"{self.files} file(s), {self.documents} document(s): {self.indexed} indexed, {self.unchanged} unchanged, "
            f"{self.removed} removed; {self.chunks_added} chunk(s) added ({self.chunks_embedded} embedded, "
            f"{self.chunks_reused} reused{rate}) in {self.seconds:.1f}s; index: {self.total_documents} document(s), "
            f"{self.total_chunks} chunk(s)"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def chunk_capacity(embedder: Embedder) -> int:
    """The most backbone tokens a chunk may have so that the recipe's full input fits ``max_length``.

    The template's own tokens and the recipe's copies of the text (echo: 2) come off the budget, and
    two tokens are kept spare: a chunk cut out of its document may tokenize a token longer on its own.
    """
    copies = embedder.recipe.text_copies
    overhead = len(embedder.layouts(["a"])[0].ids) - copies  # "a" is one token in byte-level BPE vocabularies
    return max(1, (embedder.max_length - overhead) // copies - 2)


def _model_ref(model: str | os.PathLike[str]) -> str:
    """How to load the model again later: an existing folder as an absolute path, else the name as given."""
    p = Path(model).expanduser()
    return str(p.resolve()) if p.exists() else os.fspath(model)


def _source(doc_path: str, row: int | None, chunk: int) -> str:
    return f"{doc_path}#{chunk}" if row is None else f"{doc_path}:{row}#{chunk}"


@dataclass
class _Batch:
    """Chunk rows waiting to be embedded and committed, and the documents they complete."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    vectors: list[np.ndarray | None] = field(default_factory=list)
    documents: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.vectors)

    def add_chunk(self, row: dict[str, Any], vector: np.ndarray | None) -> None:
        for k, v in row.items():
            self.columns.setdefault(k, []).append(v)
        self.vectors.append(vector)

    def complete(self, doc: Document, doc_hash: str, n_chunks: int) -> None:
        row = {"doc_key": doc.key, "path": doc.path, "row": doc.row, "doc_hash": doc_hash, "chunks": n_chunks}
        for k, v in row.items():
            self.documents.setdefault(k, []).append(v)


class Index:
    """A persistent LanceDB index of chunked documents, embedded and searched with one model.

    ``Index(path, embedder)`` opens or creates the index at ``path`` and refuses an embedder other
    than the one that built it; :meth:`open` loads that model for you.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        embedder: Embedder,
        *,
        model_ref: str | None = None,
        create: bool = True,
    ) -> None:
        self.store = Store(path, create=create)
        self.embedder = embedder
        self.model_ref = model_ref
        self.identity = model_identity(embedder)
        self.meta = self.store.read_meta()
        if self.meta is not None:
            check_same_model(self.meta["model"], self.identity, str(self.store.path))
            if self.model_ref is None:
                self.model_ref = self.meta.get("model_ref")
        self.ann_min_rows = ANN_MIN_ROWS

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
    ) -> Index:
        """An existing index with its own model (or ``model``, which must be the same one)."""
        meta = Store(path, create=False).read_meta()
        assert meta is not None
        ref = _model_ref(model) if model is not None else meta.get("model_ref")
        if ref is None:
            raise InputError(f"the index at {path} was built with an in-memory model; pass the model to use")
        return cls(path, Embedder.from_pretrained(ref, device=device, dtype=dtype), model_ref=ref, create=False)

    @property
    def path(self) -> Path:
        return self.store.path

    def __len__(self) -> int:
        return self.store.count()

    def stats(self) -> dict[str, Any]:
        return {
            "db": str(self.path),
            "documents": self.store.count_documents(),
            "chunks": self.store.count(),
            "model_ref": self.model_ref,
            "model": self.identity,
            "chunking": (self.meta or {}).get("chunking"),
            "ann_index": self.store.has_vector_index(),
        }

    # ---- chunk settings ---------------------------------------------------------------------------
    def chunk_spec(self, size: int | None = None, overlap: int | None = None, unit: Unit | None = None) -> ChunkSpec:
        """The settings to build with: what is given, else the index's stored settings, else the defaults.

        The default token size is 256 or, when smaller, what the recipe's template leaves of ``max_length``.
        """
        stored = (self.meta or {}).get("chunking")
        base = ChunkSpec(**stored) if stored else None
        unit = unit or (base.unit if base else "tokens")
        if base is None or base.unit != unit:
            base = DEFAULT_CHARS if unit == "chars" else DEFAULT_TOKENS
            if unit == "tokens":
                cap = chunk_capacity(self.embedder)
                base = ChunkSpec(min(base.size, cap), min(base.overlap, cap // 8), "tokens")
        size = size if size is not None else base.size
        if overlap is None:
            overlap = base.overlap if base.overlap < size else size // 8
        return ChunkSpec(size, overlap, unit)

    def _check_spec(self, spec: ChunkSpec) -> None:
        if spec.unit == "tokens":
            cap = chunk_capacity(self.embedder)
            if spec.size > cap:
                raise InputError(
                    f"chunk size {spec.size} tokens does not fit the model: at most {cap} with recipe "
                    f"'{self.embedder.config.recipe}' (max_length {self.embedder.max_length}, template included)"
                )

    # ---- build ------------------------------------------------------------------------------------
    def build(
        self,
        inputs: Iterable[str | os.PathLike[str]],
        *,
        text_field: str = "text",
        chunking: ChunkSpec | None = None,
        batch_size: int = DEFAULT_BATCH,
        prune: bool = False,
        max_tokens: int | None = None,
        progress: Progress | None = None,
        documents: Mapping[str, list[Document]] | None = None,
    ) -> BuildReport:
        """Bring the index up to date with ``inputs`` (files or folders); see the module docstring.

        Every input is read and checked before anything is written. ``prune`` also removes every
        indexed file that is not among ``inputs`` (without it, other files' documents are kept).
        ``documents``: ``inputs`` already read by ``documents.read_inputs`` (the CLI reads them
        before it loads the model, so that a bad line fails in a second).
        """
        start = time.perf_counter()
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        spec = chunking or self.chunk_spec()
        self._check_spec(spec)
        docs_by_path = dict(documents) if documents is not None else read_inputs(inputs, text_field)
        report = BuildReport(files=len(docs_by_path), documents=sum(len(d) for d in docs_by_path.values()))
        with self.store.lock():
            meta = {"model": self.identity, "model_ref": self.model_ref, "chunking": spec.to_dict()}
            if self.meta is None or any(self.meta.get(k) != v for k, v in meta.items()):
                self.store.write_meta(meta)
                self.meta = self.store.read_meta()
            _BuildRun(self, spec, batch_size, max_tokens, report, progress).run(docs_by_path, prune)
        report.total_chunks = self.store.count()
        report.total_documents = self.store.count_documents()
        report.ann_index = self.store.has_vector_index()
        report.seconds = time.perf_counter() - start
        return report

    # ---- search -----------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, instruction: str | None = DEFAULT_INSTRUCTION) -> list[Hit]:
        """The ``k`` chunks most similar to ``query`` (cosine), best first; the query gets ``instruction``."""
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty")
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        if self.store.count() == 0:
            raise InputError(f"the index at {self.path} is empty: add documents with `dec2vec index build`")
        vec = self.embedder.encode([query], instruction=instruction or None)[0]  # (D,) unit length
        return [
            Hit(
                score=1.0 - float(r["_distance"]),  # LanceDB's cosine distance is 1 - cosine similarity
                text=r["text"],
                source=r["source"],
                path=r["path"],
                row=r["row"],
                chunk=int(r["chunk"]),
                metadata=json.loads(r["metadata"]) if r["metadata"] else {},
                id=r["id"],
            )
            for r in self.store.search(vec, k)
        ]


class _BuildRun:
    """One build's state: what to reuse, the batch being filled, and the running report."""

    def __init__(
        self,
        index: Index,
        spec: ChunkSpec,
        batch_size: int,
        max_tokens: int | None,
        report: BuildReport,
        progress: Progress | None,
    ) -> None:
        self.index, self.store, self.emb = index, index.store, index.embedder
        self.spec, self.salt = spec, spec.key()
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.report, self.progress = report, progress
        self.reuse: dict[str, np.ndarray] = {}  # chunk hash -> vector, from orphans and pruned files
        self.batch = _Batch()
        self.changed = False

    def _forget(self, keys: list[str], reuse: dict[str, np.ndarray]) -> None:
        if keys:
            reuse.update(self.store.vectors_of(keys))
            self.store.forget(keys)
            self.changed = True

    def run(self, docs_by_path: dict[str, list[Document]], prune: bool) -> None:
        committed = self.store.committed()
        orphans = self.store.orphan_keys(committed)
        self._forget(orphans, self.reuse)
        self.report.removed += sum(1 for k in orphans if k in committed)
        dropped = set(orphans)
        committed = {k: v for k, v in committed.items() if k not in dropped}
        if prune:
            gone = sorted(k for k, (p, _) in committed.items() if p not in docs_by_path)
            self._forget(gone, self.reuse)
            self.report.removed += len(gone)
        by_path: dict[str, dict[str, str]] = {}
        for k, (p, h) in committed.items():
            by_path.setdefault(p, {})[k] = h
        for path, docs in docs_by_path.items():
            self._file(docs, by_path.get(path, {}))
        if len(self.batch):
            self._flush()
        if self.changed:
            self.store.optimize()
            if self.store.count() >= self.index.ann_min_rows and not self.store.has_vector_index():
                self.store.create_vector_index()

    def _file(self, docs: list[Document], mine: dict[str, str]) -> None:
        """Update one file's documents: forget stale rows (keeping their vectors), then queue the new ones."""
        hashes = {d.key: d.content_hash(self.salt) for d in docs}
        stale = [k for k, h in mine.items() if hashes.get(k) != h]
        local: dict[str, np.ndarray] = {}
        self._forget(stale, local)
        self.report.removed += sum(1 for k in stale if k not in hashes)
        for doc in docs:
            if mine.get(doc.key) == hashes[doc.key]:
                self.report.unchanged += 1
                continue
            chunks = chunk_text(doc.text, self.spec, self.emb.tokenizer)
            for i, c in enumerate(chunks):
                self._queue(doc, hashes[doc.key], i, c, local)
                if len(self.batch) >= self.batch_size and i < len(chunks) - 1:
                    self._flush()  # a long document may span batches; it is committed with its last chunk
            self.batch.complete(doc, hashes[doc.key], len(chunks))
            self.report.indexed += 1
            if len(self.batch) >= self.batch_size:
                self._flush()

    def _queue(self, doc: Document, doc_hash: str, i: int, c: Chunk, local: dict[str, np.ndarray]) -> None:
        h = hashlib.sha256(c.text.encode("utf-8")).hexdigest()
        vec = local.get(h)
        if vec is None:
            vec = self.reuse.get(h)
        row = {
            "id": f"{doc.key}#{i}",
            "doc_key": doc.key,
            "path": doc.path,
            "row": doc.row,
            "chunk": i,
            "source": _source(doc.path, doc.row, i),
            "text": c.text,
            "metadata": json.dumps(doc.metadata, ensure_ascii=False, default=str),
            "doc_hash": doc_hash,
            "hash": h,
            "start": c.start,
            "end": c.end,
        }
        self.batch.add_chunk(row, vec)

    def _embed(self) -> None:
        """Fill the batch's missing vectors; each distinct chunk text is embedded once."""
        b = self.batch
        todo: dict[str, list[int]] = {}
        for i, v in enumerate(b.vectors):
            if v is None:
                todo.setdefault(b.columns["hash"][i], []).append(i)
        self.report.chunks_reused += len(b) - sum(len(ix) for ix in todo.values())
        if not todo:
            return
        texts = [b.columns["text"][ix[0]] for ix in todo.values()]
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:  # layouts warn once per call with every cut text
            warnings.simplefilter("always", TruncationWarning)
            layouts = self.emb.layouts(texts)
        self.report.truncated += sum(len(w.message.indices) for w in caught if isinstance(w.message, TruncationWarning))
        self.report.tokens_embedded += sum(len(lay.ids) for lay in layouts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)  # counted above
            vecs = self.emb.encode(texts, max_tokens=self.max_tokens, show_progress=False)  # (n, D)
        self.report.embed_seconds += time.perf_counter() - t
        self.report.chunks_embedded += len(texts)
        for vec, ix in zip(vecs, todo.values(), strict=True):
            for i in ix:
                b.vectors[i] = vec

    def _flush(self) -> None:
        """Embed, then commit: chunk rows first, then the rows of the documents they complete."""
        self._embed()
        b = self.batch
        self.store.add_chunks(b.columns, np.stack(b.vectors))  # (n, D)
        if b.documents:
            self.store.commit_documents(b.documents)
        self.changed = True
        self.report.chunks_added += len(b)
        self.report.commits += 1
        if self.progress is not None:
            done = self.report.indexed
            self.progress(f"committed batch {self.report.commits}: {len(b)} chunk(s), {done} document(s) so far")
        self.batch = _Batch()
