"""Timestamps along the request path, for attributing a request's latency (off by default).

With `SGLANG_REQUEST_TRACE=DIR` in the environment, every process of the server (the HTTP
front with the tokenizer manager, the scheduler) appends `<monotonic ns> <event>` lines to
`DIR/<pid>.trace` at fixed points: the route's entry, the hop to the scheduler, its wake-up,
the prefill forward and sampling, the hop back, the first SSE chunk. CLOCK_MONOTONIC is one
clock for every process of a host, so the lines of all processes merge into one timeline
(benchmarks/ttft_overhead.py reads them). Unset, `mark` is one global lookup and a return.
"""

from __future__ import annotations

import os
import time

_DIR = os.environ.get("SGLANG_REQUEST_TRACE") or None
_files: dict[int, object] = {}  # pid -> its open trace file (a forked child opens its own)


def enabled() -> bool:
    return _DIR is not None


def mark(event: str) -> None:
    """Record `event` (one word) now, in this process's trace file."""
    if _DIR is None:
        return
    now = time.monotonic_ns()
    pid = os.getpid()
    f = _files.get(pid)
    if f is None:
        os.makedirs(_DIR, exist_ok=True)
        f = _files[pid] = open(os.path.join(_DIR, f"{pid}.trace"), "a", buffering=1)
    f.write(f"{now} {event}\n")
