"""`sglang conformance --backend NAME [--report out.json] [--ops a,b] [pytest args...]`"""

from __future__ import annotations

import argparse

ACCEPTS_EXTRA = True  # the rest goes to pytest (-k EXPR, -x, -v, ...)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("conformance", help="run the conformance suite against a backend")
    p.add_argument("--backend", required=True, help="backend name (see `sglang backends`)")
    p.add_argument("--report", default=None, help="write the JSON report to this path")
    p.add_argument("--ops", default=None, help="only these op specs, comma-separated")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from sglang.conformance.run import run_conformance

    return run_conformance(args.backend, args.report, args.ops, extra)
