"""grammar.apply_bitmask: the cuda backend's Triton kernel against the spec's reference (exact),
through the conformance runner (in Triton's interpreter where there is no GPU)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
from sglang_triton import grammar


@pytest.mark.parametrize(
    "case", kc.params("grammar.apply_bitmask", lambda c: c.params["vocab"] <= 32001)
)
def test_apply_bitmask(case):
    kc.check("grammar.apply_bitmask", grammar.apply_bitmask, case)
