"""Entry point of `sglang conformance`: run the packaged suite under pytest with our plugin."""

from __future__ import annotations

import os

import pytest

PLUGIN = "sglang.conformance.plugin"
SUITE = "sglang.conformance.suite"


def run_conformance(
    backend: str, report: str | None = None, ops: str | None = None, extra: list[str] | None = None
) -> int:
    ini = os.path.join(os.path.dirname(__file__), "pytest.ini")
    args = ["-c", ini, "-p", PLUGIN, "-p", "no:cacheprovider", "--pyargs", SUITE, f"--sglang-backend={backend}"]
    args += ["-q", "-rfE", "--no-header", "-o", "console_output_style=classic"]
    if report:
        args.append(f"--sglang-report={report}")
    if ops:
        args.append(f"--sglang-ops={ops}")
    return int(pytest.main(args + list(extra or [])))
