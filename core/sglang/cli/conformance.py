"""`sglang conformance --backend NAME [--report out.json] [--ops a,b] [--kernel PATTERN]
[--mode check|mutation|perf|support] [pytest args...]` (modes and exit codes:
sglang.conformance.run)"""

from __future__ import annotations

import argparse

ACCEPTS_EXTRA = True  # the rest goes to pytest (-k EXPR, -x, -v, ...)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("conformance", help="run the conformance suite against a backend")
    p.add_argument("--backend", required=True, help="backend name (see `sglang backends`)")
    p.add_argument("--report", default=None, help="write the JSON report to this path")
    p.add_argument("--ops", default=None, help="only these op specs, comma-separated")
    # Parsed again by sglang.conformance.run (the mode's own flags); listed here for --help.
    p.add_argument("--mode", default="check", choices=("check", "mutation", "perf", "support"))
    p.add_argument("--kernel", default=None, help="only kernels matching this fnmatch pattern")
    p.add_argument("--against", default=None, help="perf: also time this backend")
    p.add_argument("--docs", default=None, help="support: write the markdown table here")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from sglang.conformance.run import run_conformance

    mode = [f"--mode={args.mode}"] + [
        f"--{name}={value}"
        for name in ("kernel", "against", "docs")
        if (value := getattr(args, name)) is not None
    ]
    return run_conformance(args.backend, args.report, args.ops, mode + extra)
