"""Prometheus metrics with SGLang's names (`sglang:*`, label `model_name`), on a registry of the
server's own, served at /metrics only with --enable-metrics (404 otherwise, as in SGLang).

Exposed names, as SGLang exposes them where the meaning is the same: sglang:prompt_tokens_total,
sglang:generation_tokens_total, sglang:cached_tokens_total, sglang:num_requests_total,
sglang:time_to_first_token_seconds, sglang:inter_token_latency_seconds,
sglang:time_per_output_token_seconds, sglang:e2e_request_latency_seconds,
sglang:num_running_reqs, sglang:num_queue_reqs, sglang:num_used_tokens, sglang:token_usage,
sglang:max_total_num_tokens, sglang:gen_throughput, sglang:cache_hit_rate,
sglang:num_retracted_reqs_total. (prometheus_client adds `_total` to a counter's name.)
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sglang.server.errors import error_response

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerMetrics:
    def __init__(self, model_name: str) -> None:
        self.registry = r = CollectorRegistry()
        labels = ["model_name"]

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels + list(extra), registry=r)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(name, doc, labels, buckets=LATENCY_BUCKETS, registry=r)

        self.prompt_tokens = counter("sglang:prompt_tokens", "Prefill tokens processed")
        self.generation_tokens = counter("sglang:generation_tokens", "Tokens generated")
        self.cached_tokens = counter(
            "sglang:cached_tokens", "Prompt tokens served from the prefix cache"
        )
        self.requests = counter("sglang:num_requests", "Finished requests", ("finish_reason",))
        self.retractions = counter(
            "sglang:num_retracted_reqs", "Requests retracted when the KV cache ran out"
        )
        self.ttft = histogram("sglang:time_to_first_token_seconds", "Time to first token")
        self.itl = histogram(
            "sglang:inter_token_latency_seconds", "Time between output chunks, per token"
        )
        self.tpot = histogram(
            "sglang:time_per_output_token_seconds",
            "Per request: (latency - time to first token) / (output tokens - 1)",
        )
        self.e2e = histogram("sglang:e2e_request_latency_seconds", "End-to-end request latency")
        self.running = gauge("sglang:num_running_reqs", "Requests running")
        self.queued = gauge("sglang:num_queue_reqs", "Requests waiting")
        self.used_tokens = gauge(
            "sglang:num_used_tokens", "KV slots held by requests (not the evictable cache)"
        )
        self.token_usage = gauge("sglang:token_usage", "num_used_tokens / max_total_num_tokens")
        self.max_total_tokens = gauge("sglang:max_total_num_tokens", "KV cache size in tokens")
        self.gen_throughput = gauge(
            "sglang:gen_throughput", "Tokens generated per second since the previous scrape"
        )
        self.cache_hit_rate = gauge(
            "sglang:cache_hit_rate", "Prompt tokens served from the cache / prompt tokens"
        )
        self.replica_requests = Gauge(  # with --dp-size > 1: the load balancer's placement
            "sglang:num_requests_per_dp_rank", "Requests sent to each data-parallel replica",
            labels + ["dp_rank"], registry=r,
        )  # fmt: skip
        self.model_name = model_name
        self._children: dict[tuple, Any] = {}
        self._last_generated: tuple[float, int] | None = None  # (monotonic time, tokens)
        self._last_retractions = 0

    def _of(self, metric: Any, *extra: str) -> Any:
        """`metric`'s child for this model (and `extra` labels), made on first use (so it is
        exported from then on, as `labels` does) and kept: `labels` locks and builds a key."""
        key = (metric, extra)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self.model_name, *extra)
        return child

    def observe_chunk(self, first: bool, since_last: float, new_tokens: int) -> None:
        if first:
            self._of(self.ttft).observe(since_last)
        elif new_tokens > 0:
            per_token = since_last / new_tokens
            itl = self._of(self.itl)
            for _ in range(new_tokens):
                itl.observe(per_token)

    def observe_finish(self, result: Any, e2e: float, ttft: float | None = None) -> None:
        """`result`: the request's last GenerateResult."""
        completion = result.completion_tokens
        self._of(self.prompt_tokens).inc(result.prompt_tokens)
        self._of(self.generation_tokens).inc(completion)
        self._of(self.cached_tokens).inc(result.cached_tokens)
        self._of(self.requests, result.finish_type or "unknown").inc()
        self._of(self.e2e).observe(e2e)
        if ttft is not None and completion > 1:
            self._of(self.tpot).observe((e2e - ttft) / (completion - 1))

    def set_scheduler_stats(self, stats: dict) -> None:
        """From the scheduler's `stats` control reply (engine.scheduler_process.control)."""
        m = self.model_name
        self.running.labels(m).set(stats.get("running", 0))
        self.queued.labels(m).set(stats.get("waiting", 0))
        total = stats.get("kv_total", 0)
        used = total - stats.get("kv_free", 0) - stats.get("kv_evictable", 0)
        self.max_total_tokens.labels(m).set(total)
        self.used_tokens.labels(m).set(used)
        self.token_usage.labels(m).set(used / total if total else 0.0)
        prompt = stats.get("prompt_tokens", 0)
        self.cache_hit_rate.labels(m).set(stats.get("cached_tokens", 0) / prompt if prompt else 0.0)
        retractions = stats.get("retractions", 0)
        self.retractions.labels(m).inc(max(retractions - self._last_retractions, 0))
        self._last_retractions = retractions
        now, generated = time.monotonic(), stats.get("generated_tokens", 0)
        if self._last_generated is not None and now > self._last_generated[0]:
            rate = (generated - self._last_generated[1]) / (now - self._last_generated[0])
            self.gen_throughput.labels(m).set(max(rate, 0.0))
        self._last_generated = (now, generated)
        for replica in stats.get("replicas", []):
            self.replica_requests.labels(m, str(replica["replica"])).set(replica["requests"])

    def render(self) -> bytes:
        return generate_latest(self.registry)


def router(enabled: bool) -> APIRouter:
    """GET /metrics: Prometheus text with --enable-metrics, else a 404 saying how to turn it on.
    Included before the other routers so that this route is the one that answers."""
    routes = APIRouter()

    @routes.get("/metrics", include_in_schema=enabled)
    async def metrics(request: Request):
        if not enabled:
            return error_response(404, "metrics are off: start the server with --enable-metrics")
        state = request.app.state.server
        await state.refresh_scheduler_gauges()
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    return routes
