"""The encode engine: a stream of texts -> (n, D) float32 blocks in input order, fast.

Batches are cut by a token budget over length-sorted texts rather than by a fixed count: short
texts travel in large batches, long ones in small ones, and padding stays minimal. The longest
batch comes first, so an out-of-memory error shows up at once, not at the end of a long job.
A prefetch thread prepares the next batches while the model runs (docs/ARCHITECTURE.md): it hands
the model thread typed work items, a :class:`Batch` per model call and a :class:`BlockEnd` when a
block of texts is complete, and the model thread turns them into one array per block.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import queue
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import nn

from .attention import varlen_supported
from .device import default_max_tokens
from .embedding_model import EmbeddingModel
from .errors import ConfigError
from .inputs import pack_features
from .pipeline import PaddingSide, TextPipeline, TruncationWarning, validate_texts

T = TypeVar("T")
log = logging.getLogger(__name__)
# texts tokenized, length-sorted and batched together by ``Embedder.encode``. Small enough that
# tokenizing the next block overlaps with the model running this one; large enough that sorting
# leaves little padding.
ENCODE_CHUNK = 2048


def encode_all(
    encode_iter: Callable[..., Iterator[np.ndarray]],
    texts: list[str],
    show_progress: bool | None,
    **options: Any,
) -> np.ndarray:
    """``encode`` on top of an ``encode_iter`` (Embedder's and EncoderOnlyEmbedder's alike): the whole list as
    one (n, D) array, in ``ENCODE_CHUNK`` blocks, with one TruncationWarning for the call (pointing at the
    caller of ``encode``), however many blocks it took. A bar is shown from 1,000 texts unless told."""
    cut: list[int] = []
    blocks = encode_iter(
        texts,
        chunk_size=ENCODE_CHUNK,
        show_progress=len(texts) >= 1000 if show_progress is None else show_progress,
        total=len(texts),
        on_truncated=cut.extend,
        **options,
    )
    parts = list(blocks)
    if cut:
        warnings.warn(TruncationWarning(cut), stacklevel=3)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass(frozen=True, kw_only=True)
class EncodeOptions:
    """How ``encode`` / ``encode_iter`` run; their keyword arguments, in one place."""

    instruction: str | None = None  # written before every text with the recipe's template
    normalize: bool = True  # unit-length rows
    chunk_size: int = 4096  # texts per block: one output array each, and the unit of sorting
    max_tokens: int | None = None  # padded tokens per batch; None: the device's default
    max_batch_size: int | None = None  # texts per batch at most; None: only the token budget limits
    truncate: bool = True  # cut texts over the limit (reported) instead of refusing them
    padding_side: PaddingSide = "right"
    packed: bool | None = None  # unpadded varlen batches; None: where the kernel runs (see can_pack)


@dataclass(frozen=True)
class Batch:
    """One model call: block-local ``rows`` and their collated (CPU, maybe pinned) features, in that order."""

    rows: list[int]
    features: dict[str, torch.Tensor]


@dataclass(frozen=True)
class BlockEnd:
    """Every batch of a block was sent: its ``size``, and the stream indices of its texts that were cut."""

    size: int
    truncated: list[int]


WorkItem = Batch | BlockEnd


def plan_batches(lengths: list[int], max_tokens: int, max_batch_size: int = 512) -> list[list[int]]:
    """Indices grouped so that (batch size x longest length) <= max_tokens; longest texts first."""
    if max_tokens < 1 or max_batch_size < 1:
        raise ValueError("max_tokens and max_batch_size must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = lengths[i]
        new_longest = max(longest, n)
        if current and (new_longest * (len(current) + 1) > max_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current, new_longest = [], n
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


class Prefetcher(Generic[T]):
    """Runs an iterator in a background thread and hands its items over through a bounded queue.

    Why: tokenizing, collating and pinning the next batch then overlaps with the model running the
    current one, instead of sitting on the critical path. The fast tokenizers release the GIL, and
    the model mostly waits on kernels, so the two share a process well. An exception in the
    producer is raised in the consumer; closing the consumer early stops the producer.
    """

    _DONE = object()

    def __init__(self, source: Iterator[T], depth: int = 4) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name="dec2vec-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterator[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(self._DONE)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(_Failure(e))

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                item = self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop and join the producer; it sees the stop flag within 0.1 s of its current item."""
        self._stop.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():  # an item taking over 30 s; the daemon thread ends with the process
            log.warning("the prefetch thread is still preparing a batch; leaving it to finish")


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter), read lazily."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def can_pack(model: EmbeddingModel, max_length: int) -> bool:
    """Whether encode runs texts unpadded by default: a varlen kernel exists here, and no
    sliding-window layer could see past its window (the varlen kernel applies none)."""
    window = getattr(model.backbone.config, "sliding_window", None)
    if window is not None and max_length > int(window):
        return False
    return varlen_supported(model.device, model.dtype)


def plan_work(
    texts: Iterable[str], pipeline: TextPipeline, opts: EncodeOptions, *, budget: int, pin: bool
) -> Iterator[WorkItem]:
    """The producer's side: blocks of texts validated, tokenized once, batched, collated (and pinned)."""
    start = 0
    for chunk in chunked(texts, opts.chunk_size):
        chunk = validate_texts(chunk, offset=start)
        prepared = pipeline.prepare(chunk, opts.instruction, opts.truncate, offset=start)
        for rows in plan_batches(prepared.lengths, budget, opts.max_batch_size or 1 << 30):
            feats = pipeline.features(prepared, rows, opts.padding_side)
            if opts.packed:
                feats.update(pack_features(feats["attention_mask"]))
            if pin:
                feats = {k: v.pin_memory() for k, v in feats.items()}
            yield Batch(rows, feats)
        yield BlockEnd(len(chunk), [start + i for i in prepared.truncated])
        start += len(chunk)


def encode_stream(
    model: EmbeddingModel,
    pipeline: TextPipeline,
    texts: Iterable[str],
    opts: EncodeOptions,
    *,
    show_progress: bool = False,
    total: int | None = None,
    on_truncated: Callable[[list[int]], None] | None = None,
) -> Iterator[np.ndarray]:
    """The consumer's side: run each :class:`Batch`, and at each :class:`BlockEnd` yield the block's rows.

    Outputs stay on the device until their block is done, so there is no host sync per batch.
    Truncated texts go to ``on_truncated``, else a :class:`TruncationWarning` per block.
    """
    if opts.padding_side not in ("right", "left"):
        raise ConfigError(f"padding_side must be 'right' or 'left', got '{opts.padding_side}'")
    if opts.packed is None:
        opts = dataclasses.replace(opts, packed=can_pack(model, pipeline.max_length) and opts.padding_side == "right")
    elif opts.packed and opts.padding_side != "right":
        raise ConfigError("packed encoding needs padding_side='right'")
    device = model.device
    budget = opts.max_tokens or default_max_tokens(device)
    progress = None
    if show_progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=total, desc="encode", unit="text")

    packed, right_padded = bool(opts.packed), opts.padding_side == "right"
    was_training = model.training
    model.eval()
    outputs: list[torch.Tensor] = []
    order: list[int] = []
    work = plan_work(texts, pipeline, opts, budget=budget, pin=device.type == "cuda")
    try:
        with torch.inference_mode():
            for item in Prefetcher(work, depth=16):
                if isinstance(item, Batch):
                    feats = {k: v.to(device, non_blocking=True) for k, v in item.features.items()}
                    vectors = model.embed_batch(feats, packed=packed, right_padded=right_padded).float()  # (b, D)
                    if opts.normalize:
                        vectors = nn.functional.normalize(vectors, dim=-1)
                    outputs.append(vectors)  # left on the device: no sync per batch
                    order.extend(item.rows)
                    if progress is not None:
                        progress.update(len(item.rows))
                    continue
                out = np.empty((item.size, model.embedding_dim), dtype=np.float32)
                out[np.asarray(order)] = torch.cat(outputs).cpu().numpy()
                outputs, order = [], []
                if item.truncated and on_truncated is not None:
                    on_truncated(item.truncated)
                elif item.truncated:
                    warnings.warn(TruncationWarning(item.truncated), stacklevel=3)
                yield out
    finally:
        model.train(was_training)
        if progress is not None:
            progress.close()
