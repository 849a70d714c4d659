"""gemm.fp8: the cuda backend's kernel against the spec's reference through the conformance
runner: the Triton scaled GEMM (epilogue and 128x128 block scales) in the interpreter where
there is no GPU, and the torch._scaled_mm plumbing (scale shapes, the transposed weight) on
the CPU, whose torch runs _scaled_mm too."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang.backend.types import match_case_id
from sglang_cuda.kernels import gemm_fp8
from sglang_cuda.plugin import sglang_backend_conformance_manifest

# On a GPU, the cases the backend's conformance manifest lists as expected failures (strict).
EXPECTED_FAILURES = sglang_backend_conformance_manifest().expected_failures if kc.GPU else ()


def small(case):
    p = case.params
    return p["k"] <= 1000 and p["n"] <= 512 and (p["m"] <= 7 or case.dtype == torch.bfloat16)


@pytest.mark.parametrize("case", kc.params("gemm.fp8", small))
def test_fp8(case, request):
    for known in EXPECTED_FAILURES:
        if match_case_id(known.pattern, f"gemm.fp8[{case.name}]"):
            request.applymarker(pytest.mark.xfail(strict=True, reason=known.reason))
    kc.check("gemm.fp8", gemm_fp8.fp8, case)


def aligned(case):
    p = case.params
    return (
        p["scheme"] != "block"
        and p["m"] > 0
        and p["k"] % 16 == 0
        and p["n"] % 16 == 0
        and p["k"] <= 1000
        and case.dtype != torch.float16
    )


@pytest.mark.skipif(kc.GPU, reason="on a GPU the conformance run takes torch._scaled_mm itself")
@pytest.mark.parametrize("case", kc.params("gemm.fp8", aligned))
def test_fp8_through_scaled_mm(case, monkeypatch):
    monkeypatch.setattr(gemm_fp8, "torch_path", lambda x, scheme, n: True)
    monkeypatch.setattr(gemm_fp8, "_disabled", set())
    kc.check("gemm.fp8", gemm_fp8.fp8, case)
    assert not gemm_fp8._disabled


@pytest.mark.parametrize("block", [(32, 32), (64, 64)])
def test_fp8_block_groups_smaller_than_128(block):
    """Checkpoints with 32- or 64-wide scale blocks (tiny test models write 32x32) run on the
    Triton GEMM with a K step of one group, against the spec's reference."""
    from sglang.ops import gemm_fp8 as spec
    from sglang.ops.quant import fp8 as q8

    gen = torch.Generator().manual_seed(0)
    m, k, n = 8, 96, 80
    x = torch.randn(m, k, generator=gen).to(torch.bfloat16).to(kc.DEVICE)
    wq, ws = q8.quantize_fp8_block(torch.randn(n, k, generator=gen) * k**-0.5, block)
    wq, ws = wq.to(kc.DEVICE), ws.to(kc.DEVICE)
    ref = spec.fp8(x.cpu(), wq.cpu(), ws.cpu(), "block", block_size=block).float()
    out = gemm_fp8.fp8(x, wq, ws, "block", block_size=block).float().cpu()
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2 * ref.abs().max().item())
