"""One incremental build of an index: what to skip, reuse, embed and commit, and its report.

:meth:`Index.build <dec2vec.search.indexer.Index.build>` checks the inputs and the settings and
holds the build lock; :class:`BuildRun` does the work under it (the order of commits that makes a
build crash-safe is described in :mod:`.indexer`).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..pipeline import TruncationWarning
from ..text_embedders import TextEmbedder
from .chunking import Chunk, ChunkSpec, chunk_text
from .documents import Document
from .store import Store

Progress = Callable[[str], None]


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
    tokens_embedded: int = 0  # model input tokens of the embedded chunks (template included)
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


def source_id(doc_path: str, row: int | None, chunk: int) -> str:
    return f"{doc_path}#{chunk}" if row is None else f"{doc_path}:{row}#{chunk}"


@dataclass
class Batch:
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


class BuildRun:
    """One build's state: what to reuse, the batch being filled, and the running report."""

    def __init__(
        self,
        store: Store,
        embedder: TextEmbedder,
        spec: ChunkSpec,
        *,
        batch_size: int,
        max_tokens: int | None,
        ann_min_rows: int,
        report: BuildReport,
        progress: Progress | None,
    ) -> None:
        self.store, self.emb = store, embedder
        self.spec, self.salt = spec, spec.key()
        self.batch_size, self.max_tokens, self.ann_min_rows = batch_size, max_tokens, ann_min_rows
        self.report, self.progress = report, progress
        self.reuse: dict[str, np.ndarray] = {}  # chunk hash -> vector, from orphans and pruned files
        self.batch = Batch()
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
            if self.store.count() >= self.ann_min_rows and not self.store.has_vector_index():
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
            "source": source_id(doc.path, doc.row, i),
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
        self.batch = Batch()
