"""Serving metrics on hand-made timings, checked against values worked out by hand."""

from __future__ import annotations

import pytest
from sglang.benchmark.datasets import DatasetRow
from sglang.benchmark.metrics import RequestOutput, calculate_metrics, summarize_ms
from sglang.benchmark.report import serving_report


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture
def run():
    rows = [
        DatasetRow("a", 10, 4),
        DatasetRow("b", 20, 5),
        DatasetRow("c", 30, 8),
        DatasetRow("d", 40, 1),
    ]
    outputs = [
        # 4 tokens: ttft 0.5 s, then 3 gaps of 0.5 s -> TPOT 500 ms
        RequestOutput(True, "x x x x", 10, 4, ttft=0.5, latency=2.0, itl=[0.5, 0.5, 0.5]),
        # the server did not count: 5 re-tokenized words -> TPOT (1.0 - 0.2) / 4 = 200 ms
        RequestOutput(True, "y y y y y", 20, None, ttft=0.2, latency=1.0, itl=[0.1, 0.2, 0.2, 0.3]),
        RequestOutput(False, "", 30, None, error="HTTP 500"),
        # one token: no TPOT, no ITL
        RequestOutput(True, "z", 40, 1, ttft=0.3, latency=0.3),
    ]
    return calculate_metrics(rows, outputs, duration=10.0, count_tokens=words)


def test_counts_and_throughputs(run):
    assert run.completed == 3 and run.failed == 1
    assert run.total_input_tokens == 10 + 20 + 40  # failed requests count no input
    assert run.total_output_tokens == 4 + 5 + 1
    assert run.total_output_tokens_retokenized == 4 + 5 + 1
    assert run.output_lens == [4, 5, 0, 1]
    assert run.request_throughput == pytest.approx(0.3)
    assert run.input_throughput == pytest.approx(7.0)
    assert run.output_throughput == pytest.approx(1.0)
    assert run.total_throughput == pytest.approx(8.0)
    assert run.concurrency == pytest.approx((2.0 + 1.0 + 0.3) / 10)


def test_latency_statistics(run):
    s = run.stats_ms
    assert s["mean_tpot_ms"] == pytest.approx(350.0)
    assert s["median_tpot_ms"] == pytest.approx(350.0)
    assert s["p99_tpot_ms"] == pytest.approx(200 + 0.99 * 300)  # linear interpolation
    assert s["mean_ttft_ms"] == pytest.approx(1000 / 3)
    assert s["median_ttft_ms"] == pytest.approx(300.0)
    assert s["max_ttft_ms"] == pytest.approx(500.0)
    # ITLs pooled over requests: 0.1 0.2 0.2 0.3 0.5 0.5 0.5
    assert s["mean_itl_ms"] == pytest.approx(2300 / 7)
    assert s["median_itl_ms"] == pytest.approx(300.0)
    assert s["p90_itl_ms"] == pytest.approx(500.0)
    assert s["max_itl_ms"] == pytest.approx(500.0)
    assert s["mean_e2e_latency_ms"] == pytest.approx(1100.0)
    assert s["p90_e2e_latency_ms"] == pytest.approx(1000 + 0.8 * 1000)
    assert s["std_e2e_latency_ms"] == pytest.approx(((900**2 + 100**2 + 800**2) / 3) ** 0.5)


def test_the_server_count_wins_over_retokenizing():
    rows = [DatasetRow("a", 5, 8)]
    out = [RequestOutput(True, "one two", 5, 8, ttft=0.1, latency=0.8)]
    m = calculate_metrics(rows, out, 1.0, words)
    assert m.total_output_tokens == 8 and m.total_output_tokens_retokenized == 2
    assert m.stats_ms["mean_tpot_ms"] == pytest.approx(100.0)


def test_empty_series_and_bad_duration():
    assert summarize_ms([]) == {
        k: 0.0 for k in ("mean", "median", "std", "p90", "p95", "p99", "max")
    }
    with pytest.raises(ValueError):
        calculate_metrics([], [], 0.0, words)


def test_report_layout_and_names(run):
    text = serving_report("openai", float("inf"), None, run)
    lines = text.splitlines()
    assert lines[0] == "============ Serving Benchmark Result ============"
    assert "Successful requests:                     3         " in lines
    assert "Failed requests:                         1         " in lines
    assert "Request throughput (req/s):              0.30      " in lines
    assert "Max request concurrency:                 not set   " in lines
    assert "Median TPOT (ms):                        350.00    " in lines
    assert "P99 ITL (ms):" in text and "P90 E2E Latency (ms):" in text
    assert all(len(line) <= 51 for line in lines)
    d = run.to_dict()
    for series in ("ttft", "tpot", "itl", "e2e_latency"):
        for stat in ("mean", "median", "std", "p90", "p95", "p99", "max"):
            assert f"{stat}_{series}_ms" in d
