"""The backend's communicator across processes: every collective x dtype against float64.

The processes run once per backend (the first case asks for them); each case then records its
own result, so the table and the JSON report show one row per collective, dtype and variant.
"""

from __future__ import annotations

from typing import Any

import pytest

from sglang.conformance.collectives import cases, run_collectives
from sglang.conformance.runner import CheckResult

RUNS = pytest.StashKey[dict[str, dict[str, CheckResult]]]()
ALL_COMM = "comm"  # --sglang-ops=comm selects every collective


def pytest_generate_tests(metafunc: Any) -> None:
    if "collective_case" not in metafunc.fixturenames:
        return
    from sglang.conformance.plugin import session_of

    session = session_of(metafunc.config)
    wanted = session.op_filter()
    selected = [
        (check, dtype)
        for check, dtype in cases()
        if (wanted is None or ALL_COMM in wanted or check.op in wanted)
        and not session.kernel_option  # --sglang-kernel checks op kernels only
    ]
    if not selected:
        skip = pytest.mark.skip(reason="no collective selected by --sglang-ops / --sglang-kernel")
        metafunc.parametrize("collective_case", [pytest.param(None, marks=skip)], ids=["comm"])
        return
    metafunc.parametrize(
        "collective_case", selected, ids=[check.case_id(dtype) for check, dtype in selected]
    )


def test_collective(request, conformance_session, conformance_backend, collective_case):
    check, dtype = collective_case
    runs = request.config.stash.setdefault(RUNS, {})
    if conformance_backend not in runs:
        backend = conformance_session.found.backends[conformance_backend]
        runs[conformance_backend] = run_collectives(backend)
    conformance_session.record(runs[conformance_backend][check.case_id(dtype)])
