"""`GET /metrics`: Prometheus text format, in vLLM's naming style (`sglc:` prefix).

From the engine (a `stats()` snapshot taken at scrape time): requests running and waiting,
KV slot usage, prefix-cache hit rate and token counters. Measured in the server, per sample:
time to first token, inter-token latency (the wait between two streamed deltas; a
jump-forward delta of several tokens is one wait) and end-to-end latency histograms; prompt,
cached and generated token counters; finished requests by reason; generated tokens/s over
the last `THROUGHPUT_WINDOW_S` seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sglc.runtime.core import Output

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
THROUGHPUT_WINDOW_S = 10.0
_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
_E2E_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)


class ThroughputWindow:
    """Tokens counted as they arrive; `rate()` is tokens/s over the last `window_s`."""

    def __init__(self, window_s: float = THROUGHPUT_WINDOW_S) -> None:
        self.window_s = window_s
        self._events: deque[tuple[float, int]] = deque()
        self._started = time.perf_counter()

    def add(self, num_tokens: int, now: float) -> None:
        if num_tokens:
            self._events.append((now, num_tokens))

    def rate(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        while self._events and self._events[0][0] < now - self.window_s:
            self._events.popleft()
        span = min(self.window_s, max(now - self._started, 1e-9))
        return sum(n for _, n in self._events) / span


class _EngineCollector(Collector):
    """Exposes the latest engine stats snapshot (set before each scrape)."""

    def __init__(self, model_name: str, metrics: ServerMetrics) -> None:
        self.model_name = model_name
        self.metrics = metrics
        self.snapshot: Mapping[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        s, labels = self.snapshot, [self.model_name]

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=["model_name"])
            family.add_metric(labels, value)
            return family

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=["model_name"])
            family.add_metric(labels, value)
            return family

        yield gauge("sglc:num_requests_in_flight",
                    "Sequences admitted by the server and not finished", self.metrics.in_flight)
        yield gauge("sglc:gen_throughput",
                    f"Generated tokens/s over the last {THROUGHPUT_WINDOW_S:g} s",
                    self.metrics.throughput.rate())
        if not s:
            return
        cache = s.get("cache", {})
        total = max(int(s.get("total_slots", 0)), 1)
        yield gauge("sglc:num_requests_running", "Sequences in the engine's running batch",
                    s.get("num_running", 0))
        yield gauge("sglc:num_requests_waiting", "Sequences queued in the engine",
                    s.get("num_waiting", 0))
        yield gauge("sglc:kv_cache_usage_perc",
                    "Share of KV slots in use (running sequences and the prefix cache), 0-1",
                    (total - int(s.get("free_slots", total))) / total)
        yield gauge("sglc:kv_cache_total_tokens", "KV pool size in tokens", total)
        yield gauge("sglc:prefix_cache_tokens", "Tokens held by the prefix cache",
                    cache.get("cached_tokens", 0))
        yield gauge("sglc:prefix_cache_hit_rate",
                    "Share of prompt tokens served from the prefix cache since start",
                    cache.get("hit_rate", 0.0))
        yield counter("sglc:prefix_cache_queries", "Prompt tokens looked up in the prefix cache",
                      cache.get("requested_tokens", 0))
        yield counter("sglc:prefix_cache_hits", "Prompt tokens found in the prefix cache",
                      cache.get("matched_tokens", 0))
        yield counter("sglc:num_preemptions", "Sequences retracted when KV ran out",
                      s.get("num_retractions", 0))
        yield counter("sglc:engine_prefill_tokens", "Tokens computed by extend passes",
                      s.get("num_prefill_tokens", 0))
        yield counter("sglc:engine_decode_tokens", "Tokens computed by decode passes",
                      s.get("num_decode_tokens", 0))


class ServerMetrics:
    """The server's Prometheus registry (one per app, so tests can run several apps)."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        self.in_flight = 0  # kept current by the admission control
        self.throughput = ThroughputWindow()
        self._engine = _EngineCollector(model_name, self)
        self.registry.register(self._engine)
        r, label = self.registry, ["model_name"]
        self.ttft = Histogram("sglc:time_to_first_token_seconds", "Time to first token",
                              label, buckets=_LATENCY_BUCKETS, registry=r).labels(model_name)
        self.itl = Histogram("sglc:inter_token_latency_seconds",
                             "Wait between two streamed deltas of one sample", label,
                             buckets=_LATENCY_BUCKETS, registry=r).labels(model_name)
        self.e2e = Histogram("sglc:e2e_request_latency_seconds", "Arrival to last token",
                             label, buckets=_E2E_BUCKETS, registry=r).labels(model_name)
        self.prompt_tokens = Counter("sglc:prompt_tokens", "Prompt tokens of finished samples",
                                     label, registry=r).labels(model_name)
        self.cached_tokens = Counter("sglc:cached_prompt_tokens",
                                     "Prompt tokens served from the prefix cache", label,
                                     registry=r).labels(model_name)
        self.generation_tokens = Counter("sglc:generation_tokens", "Generated tokens", label,
                                         registry=r).labels(model_name)
        self._finished = Counter("sglc:request_success", "Finished samples by finish reason",
                                 [*label, "finished_reason"], registry=r)
        self._model_name = model_name

    def on_tokens(self, num_tokens: int, wait_s: float, is_first: bool, now: float) -> None:
        """A sample streamed `num_tokens` after waiting `wait_s` (since arrival if first)."""
        (self.ttft if is_first else self.itl).observe(wait_s)
        self.throughput.add(num_tokens, now)

    def on_output(self, output: Output, latency_s: float) -> None:
        usage = output.usage
        self.prompt_tokens.inc(usage.prompt_tokens)
        self.cached_tokens.inc(usage.cached_tokens)
        self.generation_tokens.inc(usage.completion_tokens)
        reason = output.finish_reason.value if output.finish_reason else "error"
        self._finished.labels(self._model_name, reason).inc()
        self.e2e.observe(latency_s)

    def render(self, engine_stats: Mapping[str, Any]) -> bytes:
        """The text exposition, with the engine's numbers from `engine_stats`."""
        self._engine.snapshot = engine_stats
        return generate_latest(self.registry)
