"""The conformance report: a table a person reads and a JSON document a machine reads."""

from __future__ import annotations

import json
import platform
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import torch

from sglang.backend.discovery import LoadedBackend
from sglang.conformance.runner import FAILED, PASSED, SKIPPED, XFAILED, CheckResult
from sglang.version import __version__

STATUSES = (PASSED, FAILED, XFAILED, SKIPPED)


def versions(backend: LoadedBackend | None = None) -> dict[str, Any]:
    v = {
        "sglang": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    if backend is not None:
        v["backend"] = backend.info.version if backend.info else None
        v["backend_distribution"] = backend.distribution
    return v


def summary(results: Iterable[CheckResult]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    out = {s: counts.get(s, 0) for s in STATUSES}
    out["total"] = sum(out.values())
    return out


def build_report(results: list[CheckResult], backends: dict[str, LoadedBackend]) -> dict[str, Any]:
    by_backend: dict[str, list[CheckResult]] = defaultdict(list)
    for r in results:
        by_backend[r.backend].append(r)
    doc: dict[str, Any] = {"sglang_version": __version__, "summary": summary(results), "backends": {}}
    for name, rs in by_backend.items():
        b = backends.get(name)
        snapshot = b.capabilities.to_json() if b is not None and b.capabilities else {}
        ver = versions(b)
        doc["backends"][name] = {
            "info": b.info.__dict__ if b is not None and b.info else {},
            "capabilities": snapshot,
            "versions": ver,
            "summary": summary(rs),
            "checks": [{**r.to_json(), "versions": ver} for r in rs],
        }
    return doc


def write_report(path: str, doc: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")


def format_table(results: list[CheckResult]) -> list[str]:
    """One row per (backend, op): counts per status."""
    rows: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in results:
        rows[(r.backend, r.op)][r.status] += 1
    header = f"{'backend':<12} {'op':<26} " + " ".join(f"{s:>8}" for s in STATUSES)
    lines = [header, "-" * len(header)]
    for (backend, op), c in sorted(rows.items()):
        lines.append(f"{backend:<12} {op:<26} " + " ".join(f"{c.get(s, 0):>8}" for s in STATUSES))
    total = summary(results)
    lines.append("-" * len(header))
    lines.append(f"{'total':<39} " + " ".join(f"{total[s]:>8}" for s in STATUSES))
    return lines
