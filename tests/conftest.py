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


# Under pytest-xdist (`-n 2`, as ci/test.sh runs it) each worker is one process on one core:
# torch's OpenMP threads (and those of the engines and servers the tests start, which inherit
# the variable) are capped at one: two workers of two threads each on two cores ran the suite
# slower than one process (37 minutes against 27), of one thread each in 13.
# tests/xeon/test_native.py raises it again for its own kernels' thread split. Set
# OMP_NUM_THREADS yourself to choose otherwise.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# The longest files (seconds on a 2-core CI machine), handed out first by `--dist loadfile
# --no-loadscope-reorder` (ci/test.sh), so no long file starts last and leaves a core idle.
SLOW_FILES = (
    "tests/rocm/test_emulated_conformance.py",  # ~185 s in one test
    "tests/cuda/test_moe_decode_triton.py",  # ~150
    "tests/engine/test_parity.py",  # ~100
    "tests/engine/test_default_model_parity.py",  # ~75
    "tests/tpu/test_tpu_stack.py",  # ~75 in one test
    "tests/conformance/test_cli.py",  # ~65
    "tests/cuda/test_attention_triton.py",  # ~65
    "tests/xeon/test_native.py",  # ~60
    "tests/engine/test_scheduling.py",  # ~60
)


def pytest_collection_modifyitems(config, items):
    if not XDIST_WORKER:
        return  # one process: the files in their usual order
    rank = {path: i for i, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
