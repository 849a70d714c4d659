"""pytest plugin behind `sglang conformance`: parametrizes the suite over backends and cases,
collects every check's result, prints the table and writes the JSON report.

Options:
  --sglang-backend NAME[,NAME]  backends to check (default: every available one)
  --sglang-ops OP[,OP]          only these op specs
  --sglang-kernel PATTERN       only the kernels whose names match (fnmatch)
  --sglang-report PATH          write the JSON report there

Every kernel a backend registers for an op is checked on every case (its fallbacks serve
whenever the first declines a shape or dtype), so a report row is (backend, case, kernel). A
manifest entry that matches no case of any spec is a usage error, before anything runs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

import pytest

from sglang.backend.discovery import Discovery, discover
from sglang.conformance.case_ids import known_case_ids
from sglang.conformance.report import build_report, format_table, write_report
from sglang.conformance.runner import FAILED, SKIPPED, XFAILED, CheckResult, Target
from sglang.ops.specs import all_specs

SESSION_KEY = pytest.StashKey["ConformanceSession"]()


@dataclass
class ConformanceSession:
    backend_option: str | None
    ops_option: str | None
    report_path: str | None
    kernel_option: str | None = None
    results: list[CheckResult] = field(default_factory=list)
    _found: Discovery | None = None
    _targets: dict[str, Target] = field(default_factory=dict)

    @property
    def found(self) -> Discovery:
        if self._found is None:
            self._found = discover()
        return self._found

    def backend_names(self) -> list[str]:
        if not self.backend_option:
            return [n for n, b in self.found.backends.items() if b.available]
        names = [n.strip() for n in self.backend_option.split(",") if n.strip()]
        for n in names:
            b = self.found.backends.get(n)
            if b is None:
                raise pytest.UsageError(
                    f"backend {n!r} is not installed (found: {', '.join(self.found.backends)})"
                )
            if not b.available:
                raise pytest.UsageError(f"backend {n!r} is unavailable: {b.why_unavailable()}")
        return names

    def kernel_names(self, backend: str, op: str) -> list[str | None]:
        """The backend's kernels for `op` to check, by priority; [None] when it has none (each
        case is then one row, skipped as unsupported)."""
        kernels = sorted(self.found.registry.kernels(op, backend), key=lambda k: -k.priority)
        names = [k.name for k in kernels]
        if self.kernel_option:
            names = [n for n in names if fnmatch.fnmatchcase(n, self.kernel_option)]
            return names
        return names or [None]

    def check_manifests(self) -> None:
        """Every manifest entry of every backend under test must match a case: one that
        matches nothing is a typo or a stale entry, never silently ignored."""
        for name in self.backend_names():
            b = self.found.backends[name]
            kernels = [k.name for k in self.found.registry.kernels(backend=name)]
            try:
                stale = b.conformance_manifest().unmatched(known_case_ids(), kernels)
            except Exception as e:  # the hook raised, or returned something else
                raise pytest.UsageError(
                    f"backend {name!r}: sglang_backend_conformance_manifest failed: "
                    f"{type(e).__name__}: {e}"
                ) from None
            if stale:
                listed = "; ".join(
                    f"{e.pattern!r}" + (f" (kernel {e.kernel!r})" if e.kernel else "")
                    for e in stale
                )
                raise pytest.UsageError(
                    f"backend {name!r}: conformance manifest entries match no case: {listed}"
                )

    def op_filter(self) -> set[str] | None:
        if not self.ops_option:
            return None
        return {o.strip() for o in self.ops_option.split(",") if o.strip()}

    def target(self, name: str) -> Target:
        if name not in self._targets:
            b = self.found.backends[name]
            self._targets[name] = Target(b, self.found.registry, b.create_runtime(device_index=0))
        return self._targets[name]

    def record(self, result: CheckResult) -> None:
        self.results.append(result)
        if result.status == SKIPPED:
            pytest.skip(result.reason)
        if result.status == XFAILED:
            pytest.xfail(result.reason)
        if result.status == FAILED:
            pytest.fail(f"{result.id} on {result.backend}: {result.reason}", pytrace=False)


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("sglang-conformance")
    group.addoption("--sglang-backend", default=None, help="backends to check (comma-separated)")
    group.addoption("--sglang-ops", default=None, help="only these op specs (comma-separated)")
    group.addoption("--sglang-report", default=None, help="write the JSON report to this path")
    group.addoption("--sglang-kernel", default=None, help="only kernels matching this pattern")


def pytest_configure(config: Any) -> None:
    config.stash[SESSION_KEY] = ConformanceSession(
        config.getoption("--sglang-backend"),
        config.getoption("--sglang-ops"),
        config.getoption("--sglang-report"),
        config.getoption("--sglang-kernel"),
    )


def session_of(config: Any) -> ConformanceSession:
    return config.stash[SESSION_KEY]


def pytest_generate_tests(metafunc: Any) -> None:
    session = session_of(metafunc.config)
    if "conformance_case" in metafunc.fixturenames:
        session.check_manifests()
        wanted = session.op_filter()
        params, ids = [], []
        for backend in session.backend_names():
            for spec in all_specs():
                if wanted is not None and spec.name not in wanted:
                    continue
                kernels = session.kernel_names(backend, spec.name)
                for case in spec.cases():
                    for kernel in kernels:
                        params.append((backend, spec, case, kernel))
                        ids.append(f"{backend}::{case.id}" + (f"::{kernel}" if kernel else ""))
        if not params:
            skip = pytest.mark.skip(reason="no kernel or op selected")
            params, ids = [pytest.param(None, marks=skip)], ["nothing-selected"]
        metafunc.parametrize("conformance_case", params, ids=ids)
    if "conformance_backend" in metafunc.fixturenames:
        names = session.backend_names()
        metafunc.parametrize("conformance_backend", names, ids=names)


@pytest.fixture
def conformance_session(request: Any) -> ConformanceSession:
    return session_of(request.config)


def pytest_terminal_summary(terminalreporter: Any, config: Any) -> None:
    session = session_of(config)
    if not session.results:
        return
    terminalreporter.section("sglang conformance")
    for line in format_table(session.results):
        terminalreporter.write_line(line)
    if session.report_path:
        write_report(session.report_path, build_report(session.results, session.found.backends))
        terminalreporter.write_line(f"report: {session.report_path}")
