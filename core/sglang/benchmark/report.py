"""The printed report (SGLang's layout: 50 columns, a label column of 40) and the JSONL result
line every benchmark appends: one JSON object per run, holding its configuration and every
metric, so runs from different commits and machines can be collected into one file."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from collections.abc import Iterable
from typing import Any

from sglang.benchmark.metrics import BenchmarkMetrics

WIDTH = 50

SECTIONS = (
    ("End-to-End Latency", "e2e_latency", "E2E Latency", ("mean", "median", "p90", "p95", "p99")),
    ("Time to First Token", "ttft", "TTFT", ("mean", "median", "p90", "p95", "p99")),
    (
        "Time per Output Token (excl. 1st token)",
        "tpot",
        "TPOT",
        ("mean", "median", "p90", "p95", "p99"),
    ),
    ("Inter-Token Latency", "itl", "ITL", ("mean", "median", "p90", "p95", "p99", "max")),
)


def title(text: str, fill: str = "=") -> str:
    return f"{text:{fill}^{WIDTH}}"


def line(label: str, value: Any) -> str:
    if isinstance(value, float):
        return f"{label:<40} {value:<10.2f}"
    return f"{label:<40} {value!s:<10}"


def table(heading: str, items: Iterable[tuple[str, Any]]) -> str:
    return "\n".join([title(f" {heading} "), *(line(k, v) for k, v in items), "=" * WIDTH])


def serving_report(
    backend: str, request_rate: float, max_concurrency: int | None, m: BenchmarkMetrics
) -> str:
    rows = [
        title(" Serving Benchmark Result "),
        line("Backend:", backend),
        line("Traffic request rate:", request_rate),
        line("Max request concurrency:", max_concurrency or "not set"),
        line("Successful requests:", m.completed),
    ]
    if m.failed:
        rows.append(line("Failed requests:", m.failed))
    rows += [
        line("Benchmark duration (s):", m.duration),
        line("Total input tokens:", m.total_input_tokens),
        line("Total generated tokens:", m.total_output_tokens),
        line("Total generated tokens (retokenized):", m.total_output_tokens_retokenized),
        line("Request throughput (req/s):", m.request_throughput),
        line("Input token throughput (tok/s):", m.input_throughput),
        line("Output token throughput (tok/s):", m.output_throughput),
        line("Total token throughput (tok/s):", m.total_throughput),
        line("Concurrency:", m.concurrency),
    ]
    for heading, key, label, stats in SECTIONS:
        rows.append(title(heading, "-"))
        for stat in stats:
            name = stat.capitalize() if stat in ("mean", "median", "max") else stat.upper()
            rows.append(line(f"{name} {label} (ms):", m.stats_ms[f"{stat}_{key}_ms"]))
    rows.append("=" * WIDTH)
    return "\n".join(rows)


def git_commit() -> str:
    """The short commit of the checkout the process runs from ("" outside a git checkout):
    every recorded benchmark figure names the commit it was taken at."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def environment() -> dict[str, Any]:
    """Where and when a result was taken."""
    from sglang.version import __version__

    return {
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "sglang_version": __version__,
        "commit": git_commit(),
    }


def append_jsonl(path: str, record: dict[str, Any]) -> None:
    if not path:
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, default=str) + "\n")
