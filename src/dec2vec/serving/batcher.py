"""Dynamic batching: requests that arrive together share one model call, and each gets its own rows back.

One worker thread owns the model and its tokenizer (neither is safe to share between threads, and
one owner keeps the event loop free to accept requests while the model runs). Requests wait in a
thread-safe queue; the worker takes the first, then keeps taking more until ``wait_s`` has passed
or the merged texts hold ``batch_tokens`` tokens, and sends them all to the model's ``encode`` (which
cuts its own length-sorted forward batches). While the model runs, new requests pile up, so under
load the next merge starts at once with everything waiting: the wait only matters when the server
is idle. A request whose texts are bad (too long with truncation off, no tokens) fails alone
during collection; the rest of the merge goes on.

The queue is a ``queue.Queue`` of ``concurrent.futures.Future`` jobs rather than an asyncio queue
so the batcher works from any event loop (uvicorn's, a test client's) and from plain threads.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..pipeline import TruncationWarning

if TYPE_CHECKING:
    from ..text_embedders import TextEmbedder
    from .metrics import Metrics

log = logging.getLogger("dec2vec.serving")


class Overloaded(RuntimeError):
    """The queue is full: the client should retry later."""


class Stopped(RuntimeError):
    """The batcher was stopped before the request ran."""


@dataclass(frozen=True)
class Result:
    vectors: np.ndarray  # (n, D) float32, raw: normalisation and dimensions are the caller's choice
    tokens: int  # backbone tokens fed (template included, after truncation)
    truncated: tuple[int, ...]  # indices of the texts that were cut to the limit


@dataclass(eq=False)
class Job:
    texts: list[str]
    instruction: str | None
    truncate: bool
    future: Future[Result] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)
    tokens: int = 0  # set by the worker when it tokenizes the texts
    truncated: tuple[int, ...] = ()


_STOP = object()


class Batcher:
    def __init__(
        self,
        embedder: TextEmbedder,
        *,
        batch_tokens: int,
        wait_s: float,
        max_queue: int = 1024,
        metrics: Metrics | None = None,
    ) -> None:
        self.embedder = embedder
        self.batch_tokens = batch_tokens
        self.wait_s = wait_s
        self.max_queue = max_queue
        self.metrics = metrics
        self.calls = 0  # merged model calls so far (also in metrics); tests read it
        self._queue: queue.Queue[Job | object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = False

    # ---- the caller's side ----------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Requests waiting (not counting the merge the model is running)."""
        return self._queue.qsize()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def submit(self, texts: list[str], instruction: str | None = None, truncate: bool = True) -> Future[Result]:
        """Queue validated texts; the future gets a :class:`Result` or the request's own error."""
        job = Job(list(texts), instruction, truncate)
        with self._lock:  # with stop(): nothing can be queued behind the stop marker and wait forever
            if self._stopping:
                raise Stopped("the server is shutting down")
            if self._queue.qsize() >= self.max_queue:
                raise Overloaded(f"{self._queue.qsize()} requests are already waiting; retry shortly")
            self._queue.put(job)
        return job.future

    async def embed(self, texts: list[str], instruction: str | None = None, truncate: bool = True) -> Result:
        return await asyncio.wrap_future(self.submit(texts, instruction, truncate))

    def start(self) -> None:
        """Start the worker (once; never again after :meth:`stop`, so a late request cannot revive it)."""
        with self._lock:
            if not self._stopping and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name="dec2vec-batcher", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the merge in progress, fail whatever still waits, and end the worker."""
        with self._lock:
            self._stopping = True
            self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._fail_waiting()

    # ---- the worker -----------------------------------------------------------------------------
    def _run(self) -> None:
        carry: Job | object | None = None
        while True:
            item = carry if carry is not None else self._queue.get()
            carry = None
            if item is _STOP:
                break
            batch, carry = self._collect(item)  # type: ignore[arg-type]
            if batch:
                try:
                    self._encode(batch)
                except BaseException as e:  # never let the worker die: fail this merge, serve the next
                    log.exception("model call failed")
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(e)
        self._fail_waiting()

    def _collect(self, first: Job) -> tuple[list[Job], Job | object | None]:
        """Jobs to merge with ``first`` (each one tokenized), and the one that did not fit, if any."""
        batch: list[Job] = []
        tokens = 0
        deadline = time.monotonic() + self.wait_s
        item: Job | object = first
        while True:
            if item is _STOP:
                return batch, item
            job: Job = item  # type: ignore[assignment]
            if self._prepare(job):
                if batch and tokens + job.tokens > self.batch_tokens:
                    return batch, job
                batch.append(job)
                tokens += job.tokens
                if tokens >= self.batch_tokens:
                    return batch, None
            remaining = deadline - time.monotonic()
            try:  # past the deadline, still take what is already waiting: no sleep, just no extra wait
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                return batch, None

    def _prepare(self, job: Job) -> bool:
        """Tokenize ``job`` (once) to count its tokens; a bad request gets its error here and is dropped."""
        if job.tokens:
            return True
        if not job.future.set_running_or_notify_cancel():
            return False  # the client went away
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", TruncationWarning)
                layouts = self.embedder.layouts(job.texts, job.instruction, truncate=job.truncate)
        except Exception as e:  # InputError/TruncationError: the client's fault, reported to that client only
            job.future.set_exception(e)
            return False
        job.tokens = sum(len(lay.ids) for lay in layouts)
        job.truncated = tuple(i for w in caught if isinstance(w.message, TruncationWarning) for i in w.message.indices)
        return True

    def _encode(self, batch: list[Job]) -> None:
        groups: dict[str | None, list[Job]] = {}
        for job in batch:  # one encode call per instruction: the template differs
            groups.setdefault(job.instruction, []).append(job)
        for instruction, jobs in groups.items():
            self._encode_group(instruction, jobs)

    def _encode_group(self, instruction: str | None, jobs: list[Job]) -> None:
        texts = [t for job in jobs for t in job.texts]
        start = time.monotonic()
        if self.metrics is not None:
            for job in jobs:
                self.metrics.queue_wait.observe(start - job.enqueued)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TruncationWarning)  # counted per job in _prepare
                vectors = self.embedder.encode(texts, instruction, normalize=False, truncate=True)  # (n, D)
        except Exception as e:
            if len(jobs) > 1:  # one request must not sink the others: retry them one by one
                log.warning("merged call of %d requests failed (%s); retrying them one by one", len(jobs), e)
                for job in jobs:
                    self._encode_group(instruction, [job])
                return
            jobs[0].future.set_exception(e)
            return
        seconds = time.monotonic() - start
        self.calls += 1
        if self.metrics is not None:
            self.metrics.record_batch(len(jobs), len(texts), sum(j.tokens for j in jobs), seconds)
            self.metrics.truncated.inc(sum(len(j.truncated) for j in jobs))
        row = 0
        for job in jobs:
            n = len(job.texts)
            job.future.set_result(Result(vectors[row : row + n], job.tokens, job.truncated))
            row += n

    def _fail_waiting(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Job) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(Stopped("the server is shutting down"))
