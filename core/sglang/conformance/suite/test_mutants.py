"""Mutants of the backend's own kernels (sglang.conformance.mutants): each broken copy must fail
in every dtype it runs. A row passes when its mutant is killed, fails when it survives (the suite
would let such a bug through), and is skipped when the mutant cannot be expressed on the op.
The first kernel of each op is mutated (or every kernel matching --sglang-kernel)."""

from __future__ import annotations

from typing import Any

import pytest

from sglang.conformance.mutants import MUTANTS, run_mutant
from sglang.conformance.report import MUTANTS_OP
from sglang.conformance.runner import FAILED, PASSED, SKIPPED, CheckResult, backend_kernels
from sglang.ops.specs import all_specs


def pytest_generate_tests(metafunc: Any) -> None:
    if "mutant_case" not in metafunc.fixturenames:
        return
    from sglang.conformance.plugin import session_of

    session = session_of(metafunc.config)
    wanted = session.op_filter()
    selected = [
        (spec, mutant)
        for spec in all_specs()
        if wanted is None or MUTANTS_OP in wanted or spec.name in wanted
        for mutant in MUTANTS
    ]
    if not selected:
        skip = pytest.mark.skip(reason="no op selected by --sglang-ops")
        metafunc.parametrize("mutant_case", [pytest.param(None, marks=skip)], ids=["mutants"])
        return
    ids = [f"{spec.name}~{mutant.name}" for spec, mutant in selected]
    metafunc.parametrize("mutant_case", selected, ids=ids)


def test_mutant(conformance_session, conformance_backend, mutant_case):
    spec, mutant = mutant_case
    target = conformance_session.target(conformance_backend)
    kernels = backend_kernels(target, spec.name, conformance_session.kernel_option)
    if not conformance_session.kernel_option:
        kernels = kernels[:1]
    if not kernels:
        pytest.skip(f"{conformance_backend} has no kernel for {spec.name} to mutate")
    for kernel in kernels:
        outcome = run_mutant(target, spec, kernel, mutant)
        result = CheckResult(
            id=f"mutant[{kernel.name}~{mutant.name}]",
            op=MUTANTS_OP,
            backend=conformance_backend,
            status=SKIPPED,
            dtype=",".join(sorted({*outcome.killed_in, *outcome.survived_in})),
            metric="mutant killed",
            kernel=f"{kernel.name}~{mutant.name}",
        )
        if outcome.not_applicable:
            result.reason = f"not applicable: {outcome.not_applicable}"
        elif outcome.killed:
            result.status = PASSED
            result.reason = "killed: " + "; ".join(
                f"{d}: {w}" for d, w in outcome.killed_in.items()
            )
        elif not outcome.killed_in and not outcome.survived_in:
            result.reason = "no case ran (no capability or kernel for any case)"
        else:
            result.status = FAILED
            result.reason = "survived in " + ", ".join(
                f"{d} ({n} cases passed)" for d, n in outcome.survived_in.items()
            )
        conformance_session.record(result)
