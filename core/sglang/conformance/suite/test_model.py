"""Tiny random models end to end on every backend under test, against the reference backend in
float64 (sglang.conformance.model): logits and greedy tokens, prefill and decode, paged cache.

Each (model, dtype) runs once per backend (its first case asks for it); its prefill and decode
checks are then recorded one row each. `--sglang-ops=model` selects them all, `model.llama`
one model."""

from __future__ import annotations

from typing import Any

import pytest

from sglang.conformance.model import cases, run_model_cases
from sglang.conformance.runner import CheckResult

RUNS = pytest.StashKey[dict[tuple, dict[str, CheckResult]]]()
ALL_MODELS = "model"


def pytest_generate_tests(metafunc: Any) -> None:
    if "model_case" not in metafunc.fixturenames:
        return
    from sglang.conformance.plugin import session_of

    session = session_of(metafunc.config)
    wanted = session.op_filter()
    selected = [c for c in cases() if wanted is None or ALL_MODELS in wanted or c.op in wanted]
    if session.kernel_option:
        selected = []  # a model runs every kernel: not a check of one kernel
    if not selected:
        skip = pytest.mark.skip(reason="no model selected by --sglang-ops / --sglang-kernel")
        metafunc.parametrize("model_case", [pytest.param(None, marks=skip)], ids=["model"])
        return
    metafunc.parametrize("model_case", selected, ids=[c.id for c in selected])


def test_model(request, conformance_session, conformance_backend, model_case):
    runs = request.config.stash.setdefault(RUNS, {})
    key = (conformance_backend, model_case.arch, model_case.dtype)
    if key not in runs:
        found = conformance_session.found
        backend = found.backends[conformance_backend]
        runs[key] = run_model_cases(found, backend, model_case.arch, model_case.dtype)
    conformance_session.record(runs[key][model_case.id])
