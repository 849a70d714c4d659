"""Serving metrics from per-request timings, with SGLang's definitions and names.

Per request (seconds, from the client's clock): `ttft` to the first chunk that carries output,
`latency` to the last chunk, `itl` the gaps between output chunks (a chunk of k tokens
contributes k gaps of gap/k when the server says how many tokens it carried).
- TPOT = (latency - ttft) / (output_len - 1), for requests with more than one output token.
- Concurrency = sum of request latencies / benchmark duration.
- Throughputs divide totals by the benchmark duration; input tokens are the dataset's counts.
- Output tokens per request: the server's count (usage / meta_info) where it gave one, else
  the generated text re-tokenized; the re-tokenized total is always reported beside it.
Latency statistics are reported in milliseconds: mean, median, std, p90, p95, p99, max.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sglang.benchmark.datasets import DatasetRow

STATS = ("mean", "median", "std", "p90", "p95", "p99", "max")
SERIES = ("ttft", "tpot", "itl", "e2e_latency")


@dataclass
class RequestOutput:
    """What one benchmark request measured."""

    success: bool = False
    generated_text: str = ""
    prompt_len: int = 0
    output_len: int | None = None  # the server's count; None when it gave none
    ttft: float = 0.0
    latency: float = 0.0
    itl: list[float] = field(default_factory=list)
    start_time: float = 0.0
    error: str = ""


@dataclass
class BenchmarkMetrics:
    completed: int
    failed: int
    duration: float
    total_input_tokens: int
    total_output_tokens: int
    total_output_tokens_retokenized: int
    request_throughput: float
    input_throughput: float
    output_throughput: float
    total_throughput: float
    concurrency: float
    stats_ms: dict[str, float]  # "<stat>_<series>_ms", e.g. "p99_ttft_ms"
    output_lens: list[int]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("stats_ms", "output_lens")}
        out.update(self.stats_ms)
        return out


def summarize_ms(values_s: Sequence[float]) -> dict[str, float]:
    """Statistics of durations in seconds, in milliseconds (zeros for an empty list)."""
    if len(values_s) == 0:
        return {s: 0.0 for s in STATS}
    ms = np.asarray(values_s, dtype=np.float64) * 1000.0
    return {
        "mean": float(ms.mean()),
        "median": float(np.median(ms)),
        "std": float(ms.std()),
        "p90": float(np.percentile(ms, 90)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }


def calculate_metrics(
    rows: Sequence[DatasetRow],
    outputs: Sequence[RequestOutput],
    duration: float,
    count_tokens: Callable[[str], int],
) -> BenchmarkMetrics:
    """Aggregate per-request outputs (in the order of `rows`) over a run of `duration` s.

    count_tokens: text -> number of tokens (the benchmark's tokenizer, no special tokens).
    """
    if duration <= 0:
        raise ValueError("duration must be positive")
    series: dict[str, list[float]] = {name: [] for name in SERIES}
    output_lens: list[int] = []
    total_input = total_retok = completed = 0
    for row, out in zip(rows, outputs):
        if not out.success:
            output_lens.append(0)
            continue
        retok = count_tokens(out.generated_text)
        n = out.output_len if out.output_len is not None else retok
        output_lens.append(n)
        total_retok += retok
        total_input += row.prompt_len
        completed += 1
        if n > 1:
            series["tpot"].append((out.latency - out.ttft) / (n - 1))
        series["ttft"].append(out.ttft)
        series["itl"].extend(out.itl)
        series["e2e_latency"].append(out.latency)
    total_output = sum(output_lens)
    stats_ms = {}
    for name, values in series.items():
        for stat, value in summarize_ms(values).items():
            stats_ms[f"{stat}_{name}_ms"] = value
    return BenchmarkMetrics(
        completed=completed,
        failed=len(outputs) - completed,
        duration=duration,
        total_input_tokens=total_input,
        total_output_tokens=total_output,
        total_output_tokens_retokenized=total_retok,
        request_throughput=completed / duration,
        input_throughput=total_input / duration,
        output_throughput=total_output / duration,
        total_throughput=(total_input + total_output) / duration,
        concurrency=sum(series["e2e_latency"]) / duration,
        stats_ms=stats_ms,
        output_lens=output_lens,
    )
