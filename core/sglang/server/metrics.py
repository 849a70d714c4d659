"""Prometheus metrics with SGLang's names (`sglang:*`), on a registry of the server's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class ServerMetrics:
    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name"]
        r = self.registry
        self.prompt_tokens = Counter(
            "sglang:prompt_tokens", "Prompt tokens processed", labels, registry=r
        )
        self.generation_tokens = Counter(
            "sglang:generation_tokens", "Tokens generated", labels, registry=r
        )
        self.cached_tokens = Counter(
            "sglang:cached_tokens", "Prompt tokens served from the prefix cache", labels, registry=r
        )
        self.requests = Counter(
            "sglang:num_requests", "Finished requests", labels + ["finish_reason"], registry=r
        )
        self.ttft = Histogram(
            "sglang:time_to_first_token_seconds",
            "Time to first token",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "sglang:inter_token_latency_seconds",
            "Time between output chunks per token",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "sglang:e2e_request_latency_seconds",
            "End-to-end request latency",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.running = Gauge("sglang:num_running_reqs", "Requests running", labels, registry=r)
        self.queued = Gauge("sglang:num_queue_reqs", "Requests waiting", labels, registry=r)
        self.token_usage = Gauge(
            "sglang:token_usage", "Fraction of the KV pool in use", labels, registry=r
        )
        self.cache_hit_rate = Gauge(
            "sglang:cache_hit_rate",
            "Prompt tokens served from cache / prompt tokens",
            labels,
            registry=r,
        )
        self.model_name = model_name

    def observe_chunk(self, first: bool, since_last: float, new_tokens: int) -> None:
        if first:
            self.ttft.labels(self.model_name).observe(since_last)
        elif new_tokens > 0:
            per_token = since_last / new_tokens
            for _ in range(new_tokens):
                self.itl.labels(self.model_name).observe(per_token)

    def observe_finish(self, meta: dict, e2e: float) -> None:
        m = self.model_name
        self.prompt_tokens.labels(m).inc(meta.get("prompt_tokens", 0))
        self.generation_tokens.labels(m).inc(meta.get("completion_tokens", 0))
        self.cached_tokens.labels(m).inc(meta.get("cached_tokens", 0))
        reason = (meta.get("finish_reason") or {}).get("type", "unknown")
        self.requests.labels(m, reason).inc()
        self.e2e.labels(m).observe(e2e)

    def set_scheduler_stats(self, stats: dict) -> None:
        m = self.model_name
        self.running.labels(m).set(stats.get("running", 0))
        self.queued.labels(m).set(stats.get("waiting", 0))
        self.token_usage.labels(m).set(stats.get("kv_usage", 0.0))
        prompt = stats.get("prompt_tokens", 0)
        self.cache_hit_rate.labels(m).set(stats.get("cached_tokens", 0) / prompt if prompt else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
