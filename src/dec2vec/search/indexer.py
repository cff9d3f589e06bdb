"""``Index``: build a persistent chunk index from files incrementally, and search it with the same model.

A build is incremental, idempotent and crash-safe (the work is :class:`~.build.BuildRun`'s):

- Each document (a whole .txt/.md file, or one row of a .jsonl/.csv/.parquet file, keyed by file and
  row) has a content hash over its text, metadata and the chunk settings. A document whose committed
  hash matches is skipped; a changed or vanished row is removed and the new content embedded.
- Commit order per batch: chunk rows first, then the ``documents`` rows of the documents that batch
  completes. A build starts by deleting orphans (chunks of documents without a matching commit row),
  keeping their vectors in memory: a rerun after a crash re-embeds nothing that had been written.
- Vectors are reused by chunk-text hash from removed rows (a row moved down by an insert, a file
  renamed under ``prune``), since a chunk's vector depends only on its text and the (fixed) model.

The model is a dec2vec ``Embedder`` or a registry encoder (:mod:`.embedders`); the index stores
vectors only, so either kind builds and searches it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..device import precision_of
from ..encoder_only import text_copies
from ..errors import InputError
from ..text_embedders import TextEmbedder, load_text_embedder
from .build import BuildReport, BuildRun, Progress
from .chunking import ChunkSpec, Unit
from .defaults import DEFAULT_BATCH, DEFAULT_INSTRUCTION
from .documents import Document, read_inputs
from .embedders import query_instruction
from .hits import Hit
from .identity import check_same_model, model_identity
from .store import Store

__all__ = ["BuildReport", "Hit", "Index", "chunk_capacity"]

DEFAULT_TOKENS = ChunkSpec(256, 32, "tokens")
DEFAULT_CHARS = ChunkSpec(1000, 100, "chars")
ANN_MIN_ROWS = 100_000  # below this, exact (flat) search is fast enough and exact
BACKGROUND_SAMPLE = 256  # stored chunks a query is compared with to see how similar "unrelated" is


def chunk_capacity(embedder: TextEmbedder) -> int:
    """The most model tokens a chunk may have so that the model's full input fits ``max_length``.

    The template's own tokens and the recipe's copies of the text (echo: 2) come off the budget, and
    two tokens are kept spare: a chunk cut out of its document may tokenize a token longer on its own.
    """
    copies = text_copies(embedder)
    overhead = len(embedder.layouts(["a"])[0].ids) - copies  # "a" is one token in the usual vocabularies
    return max(1, (embedder.max_length - overhead) // copies - 2)


def _model_ref(model: str | os.PathLike[str]) -> str:
    """How to load the model again later: an existing folder as an absolute path, else the name as given."""
    p = Path(model).expanduser()
    return str(p.resolve()) if p.exists() else os.fspath(model)


def index_dtype(meta: Mapping[str, Any] | None) -> str | None:
    """The dtype an index's vectors were made in; None for an index built before it was recorded."""
    precision = (meta or {}).get("precision") or {}
    return None if precision.get("quantize") else precision.get("dtype")


def check_same_precision(stored: Mapping[str, Any] | None, current: Mapping[str, Any], where: str) -> None:
    """An InputError when the model runs in another precision than the one the index's vectors were made in.

    An index from before precisions were recorded (``stored`` None) is taken as it is.
    """
    if stored is None or dict(stored) == dict(current):
        return

    def show(p: Mapping[str, Any]) -> str:
        return f"{p.get('dtype')}" + (f" with {p['quantize']} quantization" if p.get("quantize") else "")

    flags = f"--dtype {stored.get('dtype')}" + (f" --quantize {stored['quantize']}" if stored.get("quantize") else "")
    raise InputError(
        f"the index at {where} was embedded in {show(stored)}, but this model runs in {show(current)}; vectors of "
        f"two precisions are not mixed. Load the model as the index was built ({flags}; from the CLI, leaving "
        "--dtype out does that), or build a new index with --db elsewhere"
    )


class Index:
    """A persistent LanceDB index of chunked documents, embedded and searched with one model.

    ``Index(path, embedder)`` opens or creates the index at ``path`` and refuses an embedder other
    than the one that built it; :meth:`open` loads that model for you.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        embedder: TextEmbedder,
        *,
        model_ref: str | None = None,
        create: bool = True,
    ) -> None:
        self.store = Store(path, create=create)
        self.embedder = embedder
        self.model_ref = model_ref
        self.identity = model_identity(embedder)
        self.precision = precision_of(embedder)
        self.meta = self.store.read_meta()
        if self.meta is not None:
            check_same_model(self.meta["model"], self.identity, str(self.store.path))
            check_same_precision(self.meta.get("precision"), self.precision, str(self.store.path))
            if self.model_ref is None:
                self.model_ref = self.meta.get("model_ref")
        self.ann_min_rows = ANN_MIN_ROWS
        self._background: tuple[int, np.ndarray] | None = None  # (row count, (n, D) sampled vectors)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
    ) -> Index:
        """An existing index with its own model (or ``model``, which must be the same one), in the
        precision the index was built in unless ``dtype`` says otherwise (which is then refused)."""
        meta = Store(path, create=False).read_meta()
        assert meta is not None
        ref = _model_ref(model) if model is not None else meta.get("model_ref")
        if ref is None:
            raise InputError(f"the index at {path} was built with an in-memory model; pass the model to use")
        dtype = dtype or index_dtype(meta)
        return cls(path, load_text_embedder(ref, device=device, dtype=dtype), model_ref=ref, create=False)

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
            meta = {
                "model": self.identity,
                "model_ref": self.model_ref,
                "chunking": spec.to_dict(),
                "precision": self.precision,
            }
            if self.meta is None or any(self.meta.get(k) != v for k, v in meta.items()):
                self.store.write_meta(meta)
                self.meta = self.store.read_meta()
            run = BuildRun(
                self.store,
                self.embedder,
                spec,
                batch_size=batch_size,
                max_tokens=max_tokens,
                ann_min_rows=self.ann_min_rows,
                report=report,
                progress=progress,
            )
            run.run(docs_by_path, prune)
        report.total_chunks = self.store.count()
        report.total_documents = self.store.count_documents()
        report.ann_index = self.store.has_vector_index()
        report.seconds = time.perf_counter() - start
        return report

    # ---- search -----------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, instruction: str | None = DEFAULT_INSTRUCTION) -> list[Hit]:
        """The ``k`` chunks most similar to ``query`` (cosine), best first; the query gets ``instruction``.

        A model that takes no instruction (an encoder-only one) embeds the query without the default one.
        """
        return self.nearest(self.query_vector(query, instruction), k)

    def query_vector(self, query: str, instruction: str | None = DEFAULT_INSTRUCTION) -> np.ndarray:
        """``query`` embedded as a search query: (D,), unit length."""
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty")
        return self.embedder.encode([query], instruction=query_instruction(self.embedder, instruction))[0]

    def nearest(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` chunks nearest to a unit ``vector`` (D,), best first."""
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        if self.store.count() == 0:
            raise InputError(
                f"the index at {self.path} holds no documents yet (a build found none, or was stopped before "
                f"its first commit): run `dec2vec index build --db {self.path} --input ...` to fill it"
            )
        return [Hit.from_row(r) for r in self.store.search(vector, k)]

    def background(self, vector: np.ndarray) -> np.ndarray:
        """Cosine of a unit ``vector`` (D,) with up to 256 stored chunks spread evenly over the table: (n,).

        What "unrelated" scores like for this query, model and corpus: the untrained echo model puts a
        typical chunk near 0.6, MiniLM near 0.0, so a hit's score means something only next to these.
        """
        n = self.store.count()
        if self._background is None or self._background[0] != n:  # sampled once per table size
            self._background = (n, self.store.sample_vectors(BACKGROUND_SAMPLE))
        return self._background[1] @ np.asarray(vector, dtype=np.float32)  # (n, D) @ (D,) -> (n,)
