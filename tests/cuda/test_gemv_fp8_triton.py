"""gemm.fp8's few-row GEMV (kernels.gemv_fp8) against the spec's reference through the
conformance runner, with the spec's own inputs and tolerances at decode shapes the spec's case
list does not have (M = 2..4, K not a multiple of the 128-wide scale group, N not a multiple
of the 16-row block), under several launch configurations (in Triton's interpreter where
there is no GPU); and the dispatch from gemm.fp8 for few rows."""

from __future__ import annotations

import functools

import kernel_checks as kc
import pytest
import torch
from sglang.ops.spec import Case, case_name
from sglang_cuda.kernels import gemm_fp8, gemv_fp8

VARIANTS = (("per_tensor", False), ("per_tensor", True), ("per_channel", False), ("block", False))


def _case(dt, m, k, n, scheme, static, bias):
    name = case_name(
        dt,
        f"M{m}",
        f"K{k}",
        f"N{n}",
        scheme + ("-static" if static else ""),
        "bias" if bias else "",
    )
    params = {"m": m, "k": k, "n": n, "bias": bias, "scheme": scheme, "static": static}
    return pytest.param(Case("gemm.fp8", name, dt, params), id=name)


CASES = [
    _case(dt, m, k, n, scheme, static, bias)
    for dt, m, k, n, bias in (
        (torch.bfloat16, 1, 1000, 129, True),
        (torch.bfloat16, 3, 384, 96, False),
        (torch.float16, 2, 257, 64, True),
        (torch.float32, 4, 640, 48, False),
    )
    for scheme, static in VARIANTS
]


@pytest.mark.parametrize("case", CASES)
def test_gemv_fp8(case):
    kc.check("gemm.fp8", gemv_fp8.gemv_fp8, case)


LAUNCHES = (
    {"block_n": 8, "block_k": 128, "num_warps": 2},
    {"block_n": 32, "block_k": 256, "num_warps": 4},
    {"block_n": 64, "block_k": 1024, "num_warps": 8},
    {"block_n": 16, "block_k": 128, "num_warps": 4, "dot": True},  # tensor cores, block only
    {"block_n": 64, "block_k": 128, "num_warps": 4, "dot": True},
    {"block_n": 16, "block_k": 128, "num_warps": 4, "split_k": 3},  # split-K, finished in-kernel
    {"block_n": 32, "block_k": 256, "num_warps": 4, "split_k": "auto"},
    {"block_n": 16, "block_k": 256, "num_warps": 4, "fused_act": True},  # quantized in the loop
    {"block_n": 32, "block_k": 128, "num_warps": 4, "fused_act": True, "split_k": 2},
    # tensor cores with x quantized once per call, split-K (block only)
    {"block_n": 64, "block_k": 128, "num_warps": 4, "num_stages": 4, "mma": True, "split_k": 3},
    {"block_n": 16, "block_k": 128, "num_warps": 4, "mma": True},
    {"block_n": 32, "block_k": 128, "num_warps": 4, "mma": "fused", "split_k": 2},
)


@pytest.mark.parametrize(
    "launch",
    LAUNCHES,
    ids=lambda c: (
        f"n{c['block_n']}-k{c['block_k']}"
        + ("-dot" if c.get("dot") else "")
        + ("-mma" if c.get("mma") is True else "-mma-fused" if c.get("mma") else "")
        + (f"-split{c['split_k']}" if "split_k" in c else "")
    ),
)
@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[7], CASES[10]])
def test_gemv_fp8_launches(case, launch):
    assert gemv_fp8.applies(torch.empty(case.params["m"], 8), "block", launch=launch)
    kc.check("gemm.fp8", functools.partial(gemv_fp8.gemv_fp8, launch=launch), case)


def test_applies_only_to_few_rows_and_fitting_blocks():
    x = torch.empty(4, 256)
    assert gemv_fp8.applies(x, "block") and gemv_fp8.applies(x, "per_channel")
    assert not gemv_fp8.applies(torch.empty(5, 256), "block")
    assert not gemv_fp8.applies(torch.empty(0, 256), "block")
    assert not gemv_fp8.applies(x, "block", block_size=(100, 128))  # BLOCK_N 16 straddles
    assert not gemv_fp8.applies(x, "block", block_size=(128, 96))  # not a power of two


def test_fp8_dispatches_few_rows_to_the_gemv(monkeypatch):
    """gemm.fp8 with one row runs the GEMV; with USE_GEMV off, the tiled path: same result
    within the spec's bound (both against the reference in the tests above)."""
    calls = []
    real = gemv_fp8.gemv_fp8
    monkeypatch.setattr(gemv_fp8, "gemv_fp8", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, generator=gen).to(torch.bfloat16)
    wq, ws = gemm_fp8.q8.quantize_fp8_block(torch.randn(64, 256, generator=gen) / 16, (128, 128))
    x, wq, ws = x.to(kc.DEVICE), wq.to(kc.DEVICE), ws.to(kc.DEVICE)
    y = gemm_fp8.fp8(x, wq, ws, "block")
    assert calls == [1]
    monkeypatch.setattr(gemm_fp8, "USE_GEMV", False)
    y_tiled = gemm_fp8.fp8(x, wq, ws, "block")
    assert calls == [1]
    torch.testing.assert_close(y.float(), y_tiled.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("m_major", [False, True])
@pytest.mark.parametrize("m, k, group", [(3, 256, 128), (5, 200, 64), (1, 96, 32)])
def test_quantize_token_group_matches_the_torch_helper(m, k, group, m_major):
    """One launch gives the same e4m3 codes and scales as sglang.ops.quant.fp8's helper (a
    partial last group included), in either scale layout."""
    from sglang.ops.quant import fp8 as q8

    gen = torch.Generator().manual_seed(m * k)
    x = (torch.randn(m, k, generator=gen) * 3).to(torch.bfloat16)
    x[0, :7] = 0.0  # a zero run (scale 0 in a group only if the whole group is zero)
    q_ref, s_ref = q8.quantize_fp8_token_group(x, group)
    q, s = gemv_fp8.quantize_token_group(x.to(kc.DEVICE), group, m_major=m_major)
    assert s.shape == s_ref.shape and (s.stride(0) == 1) == m_major or m == 1
    torch.testing.assert_close(s.cpu(), s_ref.float(), rtol=0, atol=0)
    assert torch.equal(q.cpu().view(torch.uint8), q_ref.view(torch.uint8))
