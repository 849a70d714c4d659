"""Session-wide test setup that must happen before any test module is imported.

Triton reads TRITON_INTERPRET when a kernel is decorated, i.e. when a backend's kernel module
is imported, and the first import can come from anywhere in the session (discovery registers
every installed backend's kernels, so the conformance tests import the cuda kernels long
before tests/cuda runs). On a machine without a GPU the cuda kernels can only run in Triton's
interpreter, so it is switched on here, once, before collection starts."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def example_backend() -> bool:
    """Whether the example vendor backend (examples/vendor-backend, `sglang-acme`) is installed.
    The install leaves it out (users must not see it); ci/test.sh puts it on PYTHONPATH and sets
    SGLANG_REQUIRE_EXAMPLE_BACKEND=1, which makes its absence a failure, so CI never silently
    drops its conformance run."""
    import importlib.metadata as md

    try:
        md.version("sglang-acme")
        return True
    except md.PackageNotFoundError:
        if os.environ.get("SGLANG_REQUIRE_EXAMPLE_BACKEND") == "1":
            pytest.fail("SGLANG_REQUIRE_EXAMPLE_BACKEND=1 but sglang-acme is not importable")
        return False
