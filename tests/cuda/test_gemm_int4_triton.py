"""gemm.int4: the cuda backend's W4A16 Triton kernel (weights repacked by its prepare) against
the spec's reference through the conformance runner: AWQ, GPTQ, act-order, float zero points
(in Triton's interpreter where there is no GPU)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang_triton import gemm_int4


def small(case):
    p = case.params
    if p["m"] == 33:  # one large case per packing family is enough in the interpreter
        return case.dtype == torch.bfloat16 and p["variant"] in ("awq", "gptq-actorder")
    return p["k"] <= 1152 and (p["m"] <= 7 or case.dtype == torch.bfloat16)


@pytest.mark.parametrize("case", kc.params("gemm.int4", small))
def test_int4(case):
    kc.check("gemm.int4", gemm_int4.int4, case, prepare=gemm_int4.prepare)


@pytest.mark.parametrize("case", kc.params("gemm.int4", lambda c: c.name.startswith("bf16-M7")))
def test_int4_unprepared_and_unaligned_groups(case, monkeypatch):
    monkeypatch.setattr(gemm_int4, "_tiles", lambda m, g: (16, 32, 64))  # G=32: gathered scales
    kc.check("gemm.int4", gemm_int4.int4, case)
