"""gemm.int8 (and gemm.dense): the cuda backend's kernels against the spec's reference through
the conformance runner; the Triton scaled GEMM runs in the interpreter where there is no GPU
(where torch._int_mm serves large M on a GPU, the CPU run takes the Triton path for all M)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
from sglang_cuda.kernels import gemm


def small(case):
    return case.params["k"] <= 1000 and case.params["n"] <= 512


@pytest.mark.parametrize("case", kc.params("gemm.int8", small))
def test_int8(case):
    kc.check("gemm.int8", gemm.int8, case)


@pytest.mark.parametrize("case", kc.params("gemm.dense", small))
def test_dense(case):
    kc.check("gemm.dense", gemm.dense, case)
