"""act.silu_mul / act.gelu_mul: the cuda backend's Triton kernel against the spec's reference,
through the conformance runner (in Triton's interpreter where there is no GPU)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
from sglang_triton import activation


def small(case):
    return case.params["inter"] <= 1408


@pytest.mark.parametrize("case", kc.params("act.silu_mul", small))
def test_silu_mul(case):
    kc.check("act.silu_mul", activation.silu_mul, case)


@pytest.mark.parametrize("case", kc.params("act.gelu_mul", small))
def test_gelu_mul(case):
    kc.check("act.gelu_mul", activation.gelu_mul, case)
