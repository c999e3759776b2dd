"""Prometheus metrics (`GET /metrics`), named `ozfig_*`; docs/deploy.md lists them.

Gauges and token counters are read from the engine's counters when scraped; histograms and
outcome counters are observed as things happen: the engine reports every ended request
(`observe_finished`, from its thread: prometheus-client is thread-safe), the web search
every lookup, the error mapping every refusal. Each app has its own registry.

`ozfig_requests_waiting` is the queue a router or autoscaler should watch: requests admitted
by this replica and waiting for a decode slot (the KEDA ScaledObject in deploy/ scales on
its sum). `ozfig_requests_running` + `ozfig_requests_waiting` is the replica's load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ozfig.engine.engine import Engine
from ozfig.engine.jobs import Finished

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640)
TOKEN_GAP_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5)
SEARCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10)


# the engine's token and cache counters: (metric, help, EngineStats field)
ENGINE_COUNTERS = (
    ("ozfig_prompt_tokens", "Prompt tokens of ended requests.", "prompt_tokens_total"),
    (
        "ozfig_prompt_tokens_reused",
        "Prompt tokens whose KV cache was reused from an earlier request (--prompt-cache).",
        "prompt_tokens_reused_total",
    ),
    (
        "ozfig_prompt_cache_hits",
        "Requests that reused some KV cache (in a sequence, copied, or restored from RAM).",
        "prompt_cache_hits_total",
    ),
    (
        "ozfig_prompt_cache_misses",
        "Requests that reused no KV cache (--prompt-cache on or exact).",
        "prompt_cache_misses_total",
    ),
    (
        "ozfig_prompt_cache_restored_tokens",
        "Prompt tokens restored from the RAM prompt cache (--cache-ram).",
        "prompt_cache_restored_tokens_total",
    ),
    ("ozfig_generation_tokens", "Tokens generated.", "completion_tokens_total"),
    (
        "ozfig_draft_tokens",
        "Proposed tokens checked by speculative decoding (--speculative).",
        "draft_tokens_total",
    ),
    (
        "ozfig_draft_tokens_accepted",
        "Proposed tokens the model accepted (each one a decode step saved).",
        "draft_tokens_accepted_total",
    ),
    (
        "ozfig_engine_steps",
        "Engine steps (one decode of the running answers, a prompt chunk).",
        "steps_total",
    ),
    (
        "ozfig_engine_step_overhead_seconds",
        "Time of engine steps spent outside llama_decode (sampling, bookkeeping); per step: over ozfig_engine_steps_total.",
        "step_overhead_seconds_total",
    ),
)


class EngineCollector(Collector):
    """The engine's gauges and token counters, read at scrape time."""

    def __init__(
        self, engine: Callable[[], Engine | None], draining: Callable[[], bool], in_flight: Callable[[], int]
    ) -> None:
        self.engine = engine
        self.draining = draining
        self.in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        engine = self.engine()
        stats = engine.stats if engine is not None else None

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, value=value)

        yield gauge(
            "ozfig_ready",
            "1 when the model is loaded and the server takes requests.",
            float(engine is not None and not self.draining()),
        )
        yield gauge(
            "ozfig_draining",
            "1 while the server drains (SIGTERM or POST /admin/drain).",
            float(self.draining()),
        )
        yield gauge(
            "ozfig_http_requests_in_flight",
            "HTTP requests being answered (probes aside).",
            float(self.in_flight()),
        )
        yield gauge(
            "ozfig_slots", "Answers that can be decoded together (--slots).", stats.slots if stats else 0
        )
        yield gauge(
            "ozfig_requests_running", "Requests holding a decode slot.", stats.busy_slots if stats else 0
        )
        yield gauge(
            "ozfig_requests_waiting",
            "Requests admitted and waiting for a decode slot (the queue; scale on its sum).",
            stats.queue_depth if stats else 0,
        )
        yield gauge(
            "ozfig_kv_cache_usage_ratio",
            "Share of the KV cache's cells held by running requests (0 to 1).",
            stats.kv_cells_used / stats.kv_cells_total if stats and stats.kv_cells_total else 0,
        )
        for name, doc, field_name in ENGINE_COUNTERS:
            yield counter(name, doc, getattr(stats, field_name) if stats else 0)
        yield gauge(
            "ozfig_prompt_cache_bytes",
            "Bytes the RAM prompt cache holds (at most --cache-ram MiB).",
            stats.prompt_cache_bytes if stats else 0,
        )
        finished = CounterMetricFamily(
            "ozfig_requests_finished",
            "Requests the engine ended, by reason: stop, length, cancelled, timeout, error, aborted (drain).",
            labels=["reason"],
        )
        for reason, count in sorted(dict(stats.requests_finished).items() if stats else []):
            finished.add_metric([reason], count)
        yield finished


class Metrics:
    def __init__(
        self,
        engine: Callable[[], Engine | None],
        draining: Callable[[], bool] = lambda: False,
        in_flight: Callable[[], int] = lambda: 0,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        r.register(EngineCollector(engine, draining, in_flight))
        self.cancelled = Counter(
            "ozfig_requests_cancelled", "Requests whose client went away before the answer ended.", registry=r
        )
        self.rejected = Counter(
            "ozfig_requests_rejected",
            "Requests answered 503, by code: overloaded (queue full), draining, model_loading, "
            "concurrency_limit.",
            ["code"],
            registry=r,
        )
        self.errors = Counter(
            "ozfig_http_errors", "Error answers, by HTTP status and code.", ["status", "code"], registry=r
        )
        self.queue_time = Histogram(
            "ozfig_queue_time_seconds",
            "Seconds from submission to a decode slot.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "ozfig_time_to_first_token_seconds",
            "Seconds from submission to the first generated token (waiting and prompt included).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "ozfig_inter_token_latency_seconds",
            "Seconds between two tokens of one answer.",
            buckets=TOKEN_GAP_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "ozfig_e2e_request_latency_seconds",
            "Seconds from submission to the end of an answer (the web search before it not included).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.search = Counter(
            "ozfig_web_search",
            "Web searches by outcome: ok, empty, cached, timeout, rate_limited, error.",
            ["outcome"],
            registry=r,
        )
        self.search_time = Histogram(
            "ozfig_web_search_seconds",
            "Seconds a web search took (cache hits not included).",
            buckets=SEARCH_BUCKETS,
            registry=r,
        )

    def observe_finished(self, done: Finished) -> None:
        """Called for every request the engine ends (on the engine thread)."""
        if done.reason == "cancelled":
            self.cancelled.inc()
        if done.queued_seconds is not None:
            self.queue_time.observe(done.queued_seconds)
        if done.time_to_first_token is not None:
            self.ttft.observe(done.time_to_first_token)
        for gap in done.token_gaps:
            self.itl.observe(gap)
        if done.total_seconds is not None and done.reason in ("stop", "length"):
            self.e2e.observe(done.total_seconds)

    def observe_search(self, outcome: str, seconds: float | None) -> None:
        self.search.labels(outcome).inc()
        if seconds is not None:
            self.search_time.observe(seconds)

    def observe_error(self, status: int, code: str) -> None:
        self.errors.labels(str(status), code).inc()
        if status == 503:
            self.rejected.labels(code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
