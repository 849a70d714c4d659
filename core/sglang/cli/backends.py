"""`sglang backends [--device NAME] [--json]`: what was discovered, what was selected, and which
kernel serves each op (with every rejected candidate and why)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sglang.backend.discovery import Discovery
    from sglang.backend.selection import Platform


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backends", help="list discovered backends and per-op kernel choices")
    p.add_argument(
        "--device", default=None, help="backend to select (default: auto or $SGLANG_DEVICE)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verbose", "-v", action="store_true", help="show full tracebacks")


def describe(found: Discovery, platform: Platform | None, error: str | None) -> dict[str, Any]:
    from sglang.conformance.support import matrix

    selected = platform.name if platform else None
    ops = matrix(found)["summary"]  # every backend's kernels, available here or not
    backends = []
    for name, b in found.backends.items():
        sm = ops.get(name, {})
        backends.append(
            {
                "name": name,
                "version": b.info.version if b.info else b.distribution_version,
                "distribution": b.distribution,
                "entry_point": b.entry_point,
                "device_type": b.info.device_type if b.info else None,
                "kind": b.info.kind if b.info else None,
                "available": b.available,
                "reasons": list(b.probe.reasons) if b.probe else [],
                "error_stage": b.error_stage,
                "error": b.error,
                "kernels": b.kernel_count,
                "selected": name == selected,
                "capabilities": b.capabilities.to_json() if b.capabilities else None,
                "native_ops": sm.get("native", []),
                "fallback_ops": sm.get("fallback", []),
                "unsupported_ops": sm.get("unsupported", []),
                "verification": sm.get("verification", "-"),
            }
        )
    return {
        "selected": selected,
        "selection_reason": platform.reason if platform else None,
        "selection_error": error,
        "backends": backends,
        "ops": [r.to_json() for r in platform.resolutions()] if platform else [],
    }


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from sglang.backend.discovery import discover
    from sglang.backend.selection import BackendSelectionError, Platform, choose_backend

    found = discover()
    platform, error = None, None
    try:
        backend, reason = choose_backend(found, args.device)
        platform = Platform(found, backend, reason)
    except BackendSelectionError as e:
        error = str(e)
    doc = describe(found, platform, error)
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0 if error is None else 2
    print(f"{'backend':<14} {'version':<10} {'device':<7} {'kind':<12} {'status':<10} note")
    for b in doc["backends"]:
        status = "available" if b["available"] else ("error" if b["error"] else "unavailable")
        if b["selected"]:
            status += "*"
        if b["error"]:
            note = f"failed at {b['error_stage']}: " + b["error"].strip().splitlines()[-1]
        else:
            note = "; ".join(b["reasons"])
            if b["available"]:
                note = f"{b['kernels']} kernels" + (f"; {note}" if note else "")
        print(
            f"{b['name']:<14} {str(b['version']):<10} {str(b['device_type']):<7} "
            f"{str(b['kind']):<12} {status:<10} {note}"
        )
        if args.verbose and b["error"]:
            print("    " + b["error"].replace("\n", "\n    "))
    print(f"\n{'backend':<14} {'native':<7} {'on the reference':<34} verified")
    for b in doc["backends"]:
        total = len(b["native_ops"]) + len(b["fallback_ops"]) + len(b["unsupported_ops"])
        fallback = ", ".join(b["fallback_ops"]) or "-"
        native = f"{len(b['native_ops'])}/{total}" if total else "-"
        print(f"{b['name']:<14} {native:<7} {fallback[:34]:<34} {b['verification']}")
    if error:
        print(f"\nselection failed: {error}")
        return 2
    print(f"\nselected: {doc['selected']} ({doc['selection_reason']})   * = selected\n")
    print(f"{'op':<24} {'kernel':<34} rejected")
    for op in doc["ops"]:
        chosen = op["chosen"]["kernel"]
        rejected = "; ".join(f"{r['kernel']}: {r['reason']}" for r in op["rejected"]) or "-"
        print(f"{op['op']:<24} {chosen:<34} {rejected}")
    return 0
