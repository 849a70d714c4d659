"""Entry point of `sglang conformance`: check the backend before anything runs (one line and an
exit code when it is broken), then run the mode asked for.

Modes:
  check     (default) the packaged suite under pytest with our plugin: every op spec on every
            kernel, the communicator, the model-level checks; table and JSON report
  mutation  broken copies of the backend's kernels, which must all fail (sglang.conformance.mutants)
  perf      each op's time on the backend against the reference (and --against BACKEND) at the
            op's real model shapes (sglang.conformance.perf)
  support   the op x dtype x backend matrix of the installed backends (sglang.conformance.support),
            as a table, in the JSON report, and as markdown with --docs PATH

Exit codes: pytest's for the check mode (0 passed, 1 checks failed, 4 usage error, ...), 1 when a
mutant survives, and for a backend that cannot be checked at all (one line on stderr says why):
  10  not installed          13  one of its hooks raised (probe, capabilities, kernels)
  11  its import failed      14  unavailable here (its probe's reasons)
  12  it breaks the contract (a missing or misspelled hook, a bad record, another api_version)
  15  its conformance manifest is invalid (the hook raised, or an entry matches no case)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_NOT_INSTALLED = 10
EXIT_IMPORT = 11
EXIT_CONTRACT = 12
EXIT_HOOK = 13
EXIT_UNAVAILABLE = 14
EXIT_MANIFEST = 15
STAGE_EXIT = {
    "import": EXIT_IMPORT,
    "register": EXIT_CONTRACT,
    "info": EXIT_CONTRACT,
    "probe": EXIT_HOOK,
    "capabilities": EXIT_HOOK,
    "kernels": EXIT_HOOK,
}

PLUGIN = "sglang.conformance.plugin"
SUITE = "sglang.conformance.suite"
MODES = ("check", "mutation", "perf", "support")


def mode_arguments(extra: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The mode's own flags out of the command's extra arguments (the rest goes to pytest)."""
    p = argparse.ArgumentParser(prog="sglang conformance", add_help=False)
    p.add_argument("--mode", choices=MODES, default="check")
    p.add_argument("--kernel", default=None, help="only kernels matching this fnmatch pattern")
    p.add_argument("--against", default=None, help="perf: also time this backend")
    p.add_argument("--docs", default=None, help="support: write the markdown table here")
    p.add_argument("--repeat", type=int, default=None, help="perf: timed calls per shape")
    return p.parse_known_args(extra)


def fail(code: int, message: str) -> int:
    print(f"sglang conformance: {message}", file=sys.stderr)
    return code


def preflight(found, names: list[str]) -> int:
    """0 when every named backend can be checked, else an exit code (after one line saying
    why)."""
    from sglang.conformance.case_ids import known_case_ids

    for name in names:
        b = found.backends.get(name)
        if b is None:
            known = ", ".join(sorted(found.backends))
            return fail(EXIT_NOT_INSTALLED, f"backend {name!r} is not installed (found: {known})")
        if b.error is not None:
            return fail(STAGE_EXIT.get(b.error_stage, EXIT_CONTRACT), b.failure_line())
        if not b.available:
            return fail(EXIT_UNAVAILABLE, f"backend {name!r} is unavailable: {b.why_unavailable()}")
        try:
            manifest = b.conformance_manifest()
            kernels = [k.name for k in found.registry.kernels(backend=name)]
            stale = manifest.unmatched(known_case_ids(), kernels)
        except Exception as e:
            where = "sglang_backend_conformance_manifest"
            return fail(
                EXIT_MANIFEST, f"backend {name!r} failed in {where}: {type(e).__name__}: {e}"
            )
        if stale:
            listed = "; ".join(repr(e.pattern) for e in stale)
            return fail(
                EXIT_MANIFEST, f"backend {name!r}: manifest entries match no case: {listed}"
            )
    return 0


def run_conformance(
    backend: str, report: str | None = None, ops: str | None = None, extra: list[str] | None = None
) -> int:
    from sglang.backend.discovery import discover

    options, rest = mode_arguments(list(extra or []))
    names = [n.strip() for n in backend.split(",") if n.strip()]
    found = discover()
    if options.mode != "support":  # support reads every backend's registry, available or not
        code = preflight(found, names)
        if code:
            return code
    if options.mode == "check":
        return run_checks(backend, report, ops, options.kernel, rest)
    if rest:
        return fail(4, f"unrecognized arguments for --mode {options.mode}: {' '.join(rest)}")
    op_names = [o.strip() for o in ops.split(",")] if ops else None
    if options.mode == "mutation":
        return run_mutation(found, names, op_names, options.kernel, report)
    if options.mode == "perf":
        from sglang.conformance.perf import run_perf

        return run_perf(found, names, op_names, options.against, options.repeat, report)
    from sglang.conformance.support import run_support

    return run_support(found, report, options.docs, None if backend == "all" else names)


def run_checks(
    backend: str, report: str | None, ops: str | None, kernel: str | None, extra: list[str]
) -> int:
    import pytest

    ini = os.path.join(os.path.dirname(__file__), "pytest.ini")
    args = ["-c", ini, "-p", PLUGIN, "-p", "no:cacheprovider", "--pyargs", SUITE]
    args += [f"--sglang-backend={backend}", "-q", "-rfE", "--no-header"]
    args += ["-o", "console_output_style=classic"]
    if report:
        args.append(f"--sglang-report={report}")
    if ops:
        args.append(f"--sglang-ops={ops}")
    if kernel:
        args.append(f"--sglang-kernel={kernel}")
    return int(pytest.main(args + extra))


def run_mutation(
    found, names: list[str], ops: list[str] | None, kernel: str | None, report: str | None
) -> int:
    from sglang.conformance.mutants import mutation_summary, run_mutants
    from sglang.conformance.report import format_mutants, versions
    from sglang.conformance.runner import Target
    from sglang.ops.specs import all_specs

    doc, code = {"mode": "mutation", "backends": {}}, 0
    for name in names:
        b = found.backends[name]
        target = Target(b, found.registry, b.create_runtime(device_index=0))
        specs = [s for s in all_specs() if ops is None or s.name in ops]
        results = run_mutants(target, specs, kernel)
        summary = mutation_summary(results)
        for line in format_mutants(name, results, summary):
            print(line)
        doc["backends"][name] = {
            "versions": versions(b),
            "summary": summary,
            "mutants": [r.to_json() for r in results],
        }
        code = code or (1 if summary["survived"] else 0)
    if report:
        with open(report, "w") as f:
            json.dump(doc, f, indent=1, default=str)
            f.write("\n")
    return code
