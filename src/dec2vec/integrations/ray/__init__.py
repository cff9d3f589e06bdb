"""Bulk embedding with Ray Data: a picklable batch callable, a dataset helper, and parquet in -> parquet out.

:class:`EmbedBatch` is what ``Dataset.map_batches`` runs in each actor. It holds only its spec, so
Ray ships it cheaply; the model is loaded on the first batch an actor sees and kept for the
actor's life. Inside a batch, :meth:`Embedder.encode` does its own length-sorted token-budget
batching, so Ray's ``batch_size`` only sets how many rows travel per call.

:func:`embed_parquet` is the end-to-end job for local parquet files: texts are checked on the
driver first (an error names file and row before any actor starts), rows come back in input
order, and each output file is written atomically, so a rerun skips the files already done.

Modules: ``batch`` (the callable and :func:`embed_dataset`), ``files`` (the local parquet files:
what to read, where each goes, the text check, atomic writes; pyarrow only) and ``parquet``
(:func:`embed_parquet`, which joins them).
"""

from __future__ import annotations

try:  # checked once here, for every module of the package
    import pyarrow  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import ray
    import ray.data  # noqa: F401
except ImportError as e:  # the extra is optional: say how to get it, not just which module is missing
    raise ImportError(
        f"dec2vec.integrations.ray needs Ray Data and pyarrow ({e.name} is missing): pip install 'dec2vec[ray]'"
    ) from e

from .batch import EmbedBatch, EmbedSpec, embed_dataset
from .parquet import EmbedParquetResult, embed_parquet

__all__ = ["EmbedBatch", "EmbedParquetResult", "EmbedSpec", "embed_dataset", "embed_parquet"]
