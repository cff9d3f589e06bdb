"""Batch planning, background prefetching and device choice for encoding.

Batches are cut by a token budget over length-sorted texts rather than by a fixed count: short
texts travel in large batches, long ones in small ones, and padding stays minimal. The longest
batch comes first, so an out-of-memory error shows up at once, not at the end of a long job.
A prefetch thread prepares the next batches while the model runs (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

import torch

T = TypeVar("T")
log = logging.getLogger(__name__)


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


def default_max_tokens(device: torch.device) -> int:
    """Padded tokens per batch when the caller gives none.

    On CPU, large batches are slower, not faster: on 2 cores SmolLM2 ran at 455-506 tokens/s with
    512-1024-token batches against 184 tokens/s with 16,384 (docs/BENCHMARKS.md), as activations
    outgrow the caches. Accelerators want large batches: a small model is launch-bound below tens of
    thousands of tokens per batch (docs/BENCHMARKS.md, GPU budget sweep).
    """
    if device.type == "cuda":
        return 32768
    return 16384 if device.type == "mps" else 1024


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, then Apple MPS, else CPU; an explicit choice wins."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return DTYPES[name]


# every spelling the CLI and the API accept for a weight/compute dtype
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


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


def describe_machine(device: torch.device) -> dict[str, str]:
    """What a measured figure ran on: device, CPU model, cores, torch threads, GPU name."""
    import os
    import platform
    from pathlib import Path

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "device": str(device),
        "cpu": cpu,
        "cpu_count": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
