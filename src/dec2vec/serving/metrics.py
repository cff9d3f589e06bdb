"""Prometheus metrics of one server: requests, latency, merged batches, queue depth, texts embedded.

Each app gets its own registry, so several apps in one process (tests, notebooks) never collide,
and ``/metrics`` shows only this server's numbers.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384, 65536, 262144)


class Metrics:
    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "dec2vec_requests", "HTTP requests answered, by route and status code", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "dec2vec_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.model_calls = Counter("dec2vec_model_calls", "Merged batches sent to the model", registry=r)
        self.batch_requests = Histogram(
            "dec2vec_batch_requests", "Requests merged into one model call", buckets=COUNT_BUCKETS, registry=r
        )
        self.batch_texts = Histogram(
            "dec2vec_batch_texts", "Texts in one model call", buckets=COUNT_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "dec2vec_batch_tokens", "Backbone tokens in one model call", buckets=TOKEN_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "dec2vec_batch_seconds", "Model time of one merged call", buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_wait = Histogram(
            "dec2vec_queue_wait_seconds",
            "Time a request waited before its model call",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.texts = Counter("dec2vec_texts_embedded", "Texts embedded", registry=r)
        self.tokens = Counter("dec2vec_tokens_embedded", "Backbone tokens embedded (template included)", registry=r)
        self.truncated = Counter("dec2vec_texts_truncated", "Texts cut to the token limit", registry=r)
        depth = Gauge("dec2vec_queue_depth", "Requests waiting for the model", registry=r)
        depth.set_function(queue_depth)

    def record_batch(self, requests: int, texts: int, tokens: int, seconds: float) -> None:
        self.model_calls.inc()
        self.batch_requests.observe(requests)
        self.batch_texts.observe(texts)
        self.batch_tokens.observe(tokens)
        self.batch_seconds.observe(seconds)
        self.texts.inc(texts)
        self.tokens.inc(tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
