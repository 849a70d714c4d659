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
from sglang.ops.specs import all_specs
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


MUTANTS_OP = "mutants"  # the op of a mutation row (sglang.conformance.suite.test_mutants)


def mutation_counts(results: Iterable[CheckResult]) -> dict[str, int]:
    """Mutants of the backend's kernels: how many ran (passed = killed) and how many survived."""
    rows = [r for r in results if r.op == MUTANTS_OP]
    return {
        "mutants": sum(r.status in (PASSED, FAILED) for r in rows),
        "killed": sum(r.status == PASSED for r in rows),
        "survived": sum(r.status == FAILED for r in rows),
        "not_applicable": sum(r.status == SKIPPED for r in rows),
    }


def native_ops(backend: str, results: Iterable[CheckResult]) -> list[str]:
    """Op specs `backend` serves with a kernel of its own (not the reference fallback) that
    passed at least one check."""
    specs = {s.name for s in all_specs()}
    own = f"{backend}."
    return sorted(
        {
            r.op
            for r in results
            if r.op in specs and r.status == PASSED and (r.kernel or "").startswith(own)
        }
    )


def build_report(results: list[CheckResult], backends: dict[str, LoadedBackend]) -> dict[str, Any]:
    by_backend: dict[str, list[CheckResult]] = defaultdict(list)
    for r in results:
        by_backend[r.backend].append(r)
    doc: dict[str, Any] = {
        "sglang_version": __version__,
        "summary": summary(results),
        "backends": {},
    }
    for name, rs in by_backend.items():
        b = backends.get(name)
        snapshot = b.capabilities.to_json() if b is not None and b.capabilities else {}
        ver = versions(b)
        doc["backends"][name] = {
            "info": b.info.__dict__ if b is not None and b.info else {},
            "capabilities": snapshot,
            "versions": ver,
            "summary": summary(rs),
            "kernels": sorted({r.kernel for r in rs if r.kernel and r.op != MUTANTS_OP}),
            "native_ops": native_ops(name, rs),
            "mutation": mutation_counts(rs),
            "checks": [{**r.to_json(), "versions": ver} for r in rs],
        }
    return doc


def write_report(path: str, doc: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")


def format_table(results: list[CheckResult]) -> list[str]:
    """One row per (backend, op, kernel): counts per status. Mutants are summed per backend."""
    rows: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    for r in results:
        kernel = "" if r.op == MUTANTS_OP else (r.kernel or "-")
        rows[(r.backend, r.op, kernel)][r.status] += 1
    header = f"{'backend':<10} {'op':<22} {'kernel':<32} " + " ".join(f"{s:>7}" for s in STATUSES)
    lines = [header, "-" * len(header)]
    for (backend, op, kernel), c in sorted(rows.items()):
        counts = " ".join(f"{c.get(s, 0):>7}" for s in STATUSES)
        lines.append(f"{backend:<10} {op:<22} {kernel[:32]:<32} {counts}")
    total = summary(results)
    lines.append("-" * len(header))
    lines.append(f"{'total':<66} " + " ".join(f"{total[s]:>7}" for s in STATUSES))
    for backend in sorted({r.backend for r in results}):
        own = [r for r in results if r.backend == backend]
        checked = {r.op for r in own} & {s.name for s in all_specs()}
        if checked and backend != "reference":
            native = native_ops(backend, own)
            lines.append(
                f"{backend}: {len(native)} of {len(checked)} ops native (a kernel of its own "
                "passed); the others fall back to the reference"
            )
        m = mutation_counts(own)
        if m["mutants"]:
            lines.append(
                f"{backend}: {m['killed']} of {m['mutants']} mutants killed"
                f" ({m['not_applicable']} not applicable)"
            )
    return lines


def format_mutants(backend: str, results: list[Any], summary_: dict[str, Any]) -> list[str]:
    """The mutation mode's table: one row per (kernel, mutant)."""
    lines = [f"{'kernel':<36} {'mutant':<14} verdict"]
    for r in results:
        if r.not_applicable:
            verdict = f"not applicable: {r.not_applicable}"
        elif r.killed:
            verdict = "killed in " + ", ".join(sorted(r.killed_in))
        else:
            verdict = "SURVIVED in " + ", ".join(sorted(r.survived_in))
        lines.append(f"{r.kernel:<36} {r.mutant:<14} {verdict}")
    lines.append(
        f"{backend}: {summary_['killed']} of {summary_['mutants']} mutants killed "
        f"({summary_['not_applicable']} not applicable)"
    )
    return lines
