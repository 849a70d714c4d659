"""The packaged communicator checks, run over every available backend (see
sglang.conformance.collectives). Choose backends with --sglang-backend=a,b."""

from sglang.conformance.suite.test_communicator import (  # noqa: F401
    pytest_generate_tests,
    test_collective,
)
