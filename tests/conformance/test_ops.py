"""The packaged conformance suite, run over every available backend (see sglang.conformance).
Choose backends with --sglang-backend=a,b and ops with --sglang-ops=x,y."""

from sglang.conformance.suite.test_ops import test_op  # noqa: F401
