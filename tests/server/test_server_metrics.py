"""ServerMetrics on its own: what each observation adds to SGLang's metric names, checked
against values worked out by hand, read back through Prometheus' own text parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sglang.engine.records import GenerateResult
from sglang.scheduler.req import FinishReason
from sglang.server.metrics import ServerMetrics


def result(prompt: int, completion: int, cached: int, reason: str) -> GenerateResult:
    return GenerateResult(
        "r", "", [0] * completion, FinishReason(reason), prompt, completion, cached, 0, 0.5
    )


def samples(metrics: ServerMetrics) -> dict[str, float]:
    text = metrics.render().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            le = s.labels.get("le")
            out[s.name + (f"[{le}]" if le else "")] = s.value
    return out


def test_request_counters_and_latencies():
    m = ServerMetrics("tiny")
    m.observe_chunk(first=True, since_last=0.2, new_tokens=1)  # TTFT 0.2 s
    m.observe_chunk(first=False, since_last=0.3, new_tokens=3)  # 3 tokens, 0.1 s each
    m.observe_finish(result(7, 4, 2, "length"), e2e=0.5, ttft=0.2)
    s = samples(m)
    assert s["sglang:prompt_tokens_total"] == 7
    assert s["sglang:generation_tokens_total"] == 4
    assert s["sglang:cached_tokens_total"] == 2
    assert s["sglang:num_requests_total"] == 1
    assert s["sglang:time_to_first_token_seconds_sum"] == pytest.approx(0.2)
    assert s["sglang:inter_token_latency_seconds_count"] == 3
    assert s["sglang:inter_token_latency_seconds_sum"] == pytest.approx(0.3)
    # (0.5 - 0.2) / (4 - 1)
    assert s["sglang:time_per_output_token_seconds_sum"] == pytest.approx(0.1)
    assert s["sglang:e2e_request_latency_seconds_bucket[0.5]"] == 1
    assert s["sglang:e2e_request_latency_seconds_bucket[0.25]"] == 0


def test_one_token_requests_have_no_time_per_output_token():
    m = ServerMetrics("tiny")
    m.observe_finish(result(0, 1, 0, "stop"), 0.1, 0.1)
    assert samples(m).get("sglang:time_per_output_token_seconds_count", 0) == 0


def test_scheduler_gauges():
    m = ServerMetrics("tiny")
    stats = {
        "running": 3,
        "waiting": 2,
        "kv_total": 1000,
        "kv_free": 600,
        "kv_evictable": 150,
        "prompt_tokens": 400,
        "cached_tokens": 100,
        "retractions": 1,
        "generated_tokens": 50,
    }
    m.set_scheduler_stats(stats)
    s = samples(m)
    assert s["sglang:num_running_reqs"] == 3 and s["sglang:num_queue_reqs"] == 2
    assert s["sglang:num_used_tokens"] == 250  # held by requests: not free, not evictable
    assert s["sglang:token_usage"] == pytest.approx(0.25)
    assert s["sglang:max_total_num_tokens"] == 1000
    assert s["sglang:cache_hit_rate"] == pytest.approx(0.25)
    assert s["sglang:num_retracted_reqs_total"] == 1
    m.set_scheduler_stats({**stats, "retractions": 3, "generated_tokens": 150})
    s = samples(m)
    assert s["sglang:num_retracted_reqs_total"] == 3  # the scheduler's count, not a sum
    assert s["sglang:gen_throughput"] > 0
