"""Wall time and peak memory of one measured call.

Peak memory is what the call added on top of what was held before it: on CUDA the allocator's
peak (``max_memory_allocated``, reset first); on CPU the process's resident set, sampled every
few milliseconds by a thread, since ``ru_maxrss`` only ever grows over the process's life.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

R = TypeVar("R")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set of this process now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class RssSampler:
    """Samples the resident set in a thread; ``peak`` is the highest reading since start."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Measured:
    seconds: float
    peak_bytes: int  # added over the baseline before the call
    result: Any


def measure(fn: Callable[[], R], device: torch.device) -> Measured:
    """Run ``fn`` once, timed to the end of its device work, with its peak memory."""
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t = time.perf_counter()
        result = fn()
        synchronize(device)
        seconds = time.perf_counter() - t
        return Measured(seconds, torch.cuda.max_memory_allocated(device) - base, result)
    base = rss_bytes()
    with RssSampler() as sampler:
        t = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t
    return Measured(seconds, max(0, sampler.peak - base), result)
