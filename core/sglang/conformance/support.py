"""`sglang conformance --mode support`: the op x dtype x backend matrix, read from the registries.

A cell is one of
  the backend's kernels that accept the dtype (by priority, the backend's prefix dropped)
  "reference fallback"   the backend runs the dtype but registers no kernel for the op, so the
                         core's reference kernel serves it (correct, slow)
  "-"                    the backend does not run the op in that dtype (a capability missing)

Backends that are not available on this machine (no GPU here for cuda) are still shown: their
capabilities and kernels are read through their hooks into a scratch registry, without touching
a device, so the matrix is the same on every machine. docs/ops.md is this table for the
reference and the first-party backends (plugins.toml), kept current by tests/conformance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from sglang.backend.discovery import Discovery, LoadedBackend
from sglang.backend.registry import Kernel, KernelRegistry
from sglang.backend.types import Capabilities
from sglang.ops.spec import OpSpec, dtype_key
from sglang.ops.specs import all_specs

FALLBACK = "reference fallback"
UNSUPPORTED = "-"


@dataclass
class Column:
    backend: str
    capabilities: Capabilities | None
    kernels: dict[str, list[Kernel]]  # op -> kernels by priority
    note: str = ""  # why the column could not be read


def column(found: Discovery, b: LoadedBackend) -> Column:
    """The backend's capabilities and kernels, from discovery when it is available, else from
    its hooks called into a scratch registry."""
    if b.available:
        registry, caps = found.registry, b.capabilities
    elif b.error is not None or b.pm is None:
        return Column(b.name, None, {}, f"failed to load: {b.why_unavailable()}")
    else:
        registry = KernelRegistry()
        try:
            caps = b._hook("sglang_backend_capabilities")
            b._hook("sglang_backend_register_kernels", registry=registry.registrar(b.name))
        except Exception as e:
            return Column(b.name, None, {}, f"hooks raised: {type(e).__name__}: {e}")
    kernels = {}
    for k in registry.kernels(backend=b.name):
        kernels.setdefault(k.op, []).append(k)
    for op in kernels:
        kernels[op].sort(key=lambda k: -k.priority)
    return Column(b.name, caps, kernels)


def dtypes_of(spec: OpSpec) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    for case in spec.cases():
        if case.dtype not in seen:
            seen.append(case.dtype)
    return seen


def cell(col: Column, spec: OpSpec, dtype: torch.dtype) -> str:
    if col.capabilities is None:
        return "?"
    required = [*spec.requires, f"dtype:{dtype_key(dtype)}"]
    if col.capabilities.missing(required):
        return UNSUPPORTED
    names = []
    for k in col.kernels.get(spec.name, []):
        if col.capabilities.missing(k.requires):
            continue
        try:
            declined = k.unsupported({"dtype": dtype}) if k.unsupported else None
        except Exception:  # the predicate needs a whole configuration: it serves some
            declined = None
        if not declined:
            names.append(k.name.removeprefix(f"{col.backend}."))
    if names:
        return ", ".join(names)
    return FALLBACK if col.backend != "reference" else UNSUPPORTED


def matrix(found: Discovery, backends: list[str] | None = None) -> dict[str, Any]:
    """{"backends": [...], "rows": [{"op", "dtype", "cells": {backend: cell}}], "notes": {...}}"""
    names = backends or list(found.backends)
    cols = [column(found, found.backends[n]) for n in names if n in found.backends]
    rows = []
    for spec in all_specs():
        for dtype in dtypes_of(spec):
            rows.append(
                {
                    "op": spec.name,
                    "dtype": dtype_key(dtype),
                    "cells": {c.backend: cell(c, spec, dtype) for c in cols},
                }
            )
    return {
        "backends": [c.backend for c in cols],
        "rows": rows,
        "notes": {c.backend: c.note for c in cols if c.note},
        "summary": {c.backend: summary(c.backend, rows, found) for c in cols},
    }


def summary(backend: str, rows: list[dict[str, Any]], found: Discovery) -> dict[str, Any]:
    """Per backend: the ops it serves with a kernel of its own in some dtype (native), the ops
    the reference serves for it (fallback), those it cannot run at all, and how its kernels
    were verified (its BackendInfo.verification)."""
    cells: dict[str, set[str]] = {}
    for row in rows:
        cells.setdefault(row["op"], set()).add(row["cells"][backend])
    native = sorted(op for op, c in cells.items() if c - {FALLBACK, UNSUPPORTED, "?"})
    fallback = sorted(op for op, c in cells.items() if op not in native and FALLBACK in c)
    b = found.backends.get(backend)
    return {
        "native": native,
        "fallback": fallback,
        "unsupported": sorted(set(cells) - set(native) - set(fallback)),
        "verification": (b.info.verification if b is not None and b.info else "") or "-",
    }


def markdown(doc: dict[str, Any]) -> str:
    backends = doc["backends"]
    lines = [
        "# Ops by backend",
        "",
        "Generated by `sglang conformance --mode support --backend "
        f"{','.join(backends)} --docs docs/ops.md`",
        "(the reference and the first-party backends of plugins.toml);",
        "`tests/conformance/test_support.py` fails when it no longer matches the registries.",
        "",
        "Each cell lists the backend's own kernels for the op in that dtype, by priority (the",
        "first that accepts a shape serves it; conformance checks every one). "
        f"`{FALLBACK}`: the backend",
        "runs the dtype but has no kernel for the op, so the core's reference kernel serves it.",
        f"`{UNSUPPORTED}`: the backend lacks a capability the op needs in that dtype.",
        "",
        "## Per backend",
        "",
        "| backend | native ops | served by the reference | cannot run | verified |",
        "|---|---|---|---|---|",
    ]
    for b in backends:
        sm = doc["summary"][b]
        total = len(sm["native"]) + len(sm["fallback"]) + len(sm["unsupported"])
        lines.append(
            f"| {b} | {len(sm['native'])} of {total} | {', '.join(sm['fallback']) or '-'} | "
            f"{', '.join(sm['unsupported']) or '-'} | {sm['verification']} |"
        )
    lines += [
        "",
        "## Op by op",
        "",
        "| op | dtype | " + " | ".join(backends) + " |",
        "|---|---|" + "---|" * len(backends),
    ]
    for row in doc["rows"]:
        cells = " | ".join(row["cells"][b] for b in backends)
        lines.append(f"| `{row['op']}` | {row['dtype']} | {cells} |")
    for backend, note in sorted(doc["notes"].items()):
        lines.append(f"\n{backend}: {note}")
    return "\n".join(lines) + "\n"


def format_matrix(doc: dict[str, Any]) -> list[str]:
    backends = doc["backends"]
    width = 20
    header = f"{'op':<22} {'dtype':<9} " + " ".join(f"{b[:width]:<{width}}" for b in backends)
    lines = [header, "-" * len(header)]
    for row in doc["rows"]:
        cells = " ".join(f"{row['cells'][b][:width]:<{width}}" for b in backends)
        lines.append(f"{row['op']:<22} {row['dtype']:<9} {cells}")
    return lines


def run_support(
    found: Discovery, report: str | None, docs: str | None, backends: list[str] | None = None
) -> int:
    doc = matrix(found, backends)
    for line in format_matrix(doc):
        print(line)
    if report:
        with open(report, "w") as f:
            json.dump({"mode": "support", **doc}, f, indent=1)
            f.write("\n")
    if docs:
        with open(docs, "w") as f:
            f.write(markdown(doc))
        print(f"wrote {docs}")
    return 0
