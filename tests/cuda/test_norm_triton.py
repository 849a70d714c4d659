"""norm.rms: the cuda backend's Triton kernel against the spec's reference, through the
conformance runner (in Triton's interpreter where there is no GPU)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
from sglang_triton import norm

SMALL = kc.params("norm.rms", lambda c: c.params["dim"] <= 576)


@pytest.mark.parametrize("case", SMALL)
def test_rms_norm(case):
    kc.check("norm.rms", norm.rms_norm, case)


@pytest.mark.parametrize("case", kc.params("norm.rms", lambda c: c.name.startswith("bf16-T7")))
def test_rms_norm_chunked_rows(case, monkeypatch):
    monkeypatch.setattr(norm, "MAX_BLOCK", 128)  # rows of 576 in five chunks: the two-pass path
    kc.check("norm.rms", norm.rms_norm, case)
