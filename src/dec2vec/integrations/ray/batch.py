"""The ``map_batches`` callable that embeds a column, and :func:`embed_dataset`, which runs it on an actor pool."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data

from ...errors import ConfigError, InputError

log = logging.getLogger("dec2vec.integrations.ray")  # the package's logger, whichever module logs


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

        from ...embedder import Embedder

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
