"""Every op spec, over its cases, on every kernel of every backend under test, against the
float64 oracle."""

from sglang.conformance.runner import run_case


def test_op(conformance_session, conformance_case):
    backend, spec, case, kernel = conformance_case
    target = conformance_session.target(backend)
    conformance_session.record(run_case(target, spec, case, kernel))
