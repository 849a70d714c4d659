"""gemm.dense_rms on cuda (sglang_cuda.kernels.dense.dense_rms) against the spec's reference
through the conformance runner: the two-launch path (Triton's norm.rms, then gemm.dense) on
every case, in Triton's interpreter without a GPU; on a GPU also the CUDA C++ GEMV with the
norm inside (gemv_dense_cuda.gemv_dense_rms) at one row: bf16 and fp16, with and without a
residual, the normed row returned, bias, several launch shapes, and inside a CUDA graph with
PDL. With nvcc: the kernel compiles for sm_90a without spills and keeps the PDL rule."""

from __future__ import annotations

import re

import cuda_source as cs
import kernel_checks as kc
import pytest
import torch
from sglang.ops.spec import Case, case_name
from sglang_cuda import nvrtc
from sglang_cuda.kernels import dense as cuda_dense
from sglang_cuda.kernels import gemv_dense_cuda

RUNS = kc.GPU and nvrtc.available() is None
gpu = pytest.mark.skipif(not RUNS, reason=f"needs a CUDA GPU and NVRTC ({nvrtc.available()})")


def _two_launches(**kw):
    return cuda_dense.dense_rms(**kw, launch={"cuda": {"rms": False}})


@pytest.mark.parametrize(
    "case",
    kc.cases("gemm.dense_rms", lambda c: c.params["m"] in (1, 3) and c.params["k"] <= 2048),
    ids=lambda c: c.name,
)
def test_two_launch_path(case):
    kc.check("gemm.dense_rms", _two_launches, case)


def _case(dt, k, n, bias, residual, normed):
    parts = ("residual" if residual else "", "normed" if normed else "", "bias" if bias else "")
    name = case_name(dt, "M1", f"K{k}", f"N{n}", *parts)
    params = {"m": 1, "k": k, "n": n, "bias": bias, "residual": residual, "normed": normed}
    return Case("gemm.dense_rms", name, dt, params)


CASES = [
    _case(torch.bfloat16, 2048, 5120, False, True, False),  # Qwen3-30B-A3B's qkv
    _case(torch.bfloat16, 2048, 128, False, True, True),  # its router, the normed row kept
    _case(torch.bfloat16, 2048, 640, True, False, False),  # the first layer: no residual
    _case(torch.bfloat16, 1000, 135, True, True, True),  # K % 256 != 0, N % 8 != 0
    _case(torch.float16, 4096, 520, False, True, True),
]
IDS = [c.name for c in CASES]


def _cuda_only(launch=None):
    launch = {"enabled": True, **(launch or {})}

    def run(x, norm_weight, weight, eps=1e-6, bias=None, residual=None, return_normed=False):
        cfg = gemv_dense_cuda.plan_rms(x, norm_weight, weight, residual, launch)
        assert cfg is not None, "the CUDA kernel did not take this call"
        return gemv_dense_cuda.gemv_dense_rms(
            x, norm_weight, weight, eps, bias, residual, return_normed, cfg
        )

    return run


@gpu
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gemv_dense_rms_cuda(case):
    kc.check("gemm.dense_rms", _cuda_only(), case)


@gpu
@pytest.mark.parametrize(
    "launch",
    ({"rows": 1, "warps": 1, "unroll": 1}, {"rows": 4, "warps": 8, "unroll": 2, "early": True}),
    ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()),
)
@pytest.mark.parametrize("case", [CASES[1], CASES[3]], ids=[IDS[1], IDS[3]])
def test_gemv_dense_rms_cuda_launches(case, launch):
    kc.check("gemm.dense_rms", _cuda_only(launch), case)


@gpu
def test_in_a_cuda_graph_with_pdl():
    """A layer's two norms as the op runs them at decode (the first one's h is the second's
    residual; the second returns its normed row), captured in a graph and launched with PDL:
    the replay equals the eager calls, through the registered op with the kernel turned on."""
    launch = {"cuda": {"enabled": True, "rms": True}}
    g = torch.Generator(device="cuda").manual_seed(0)
    w1 = torch.randn(1024, 1024, device="cuda", generator=g).bfloat16() * 0.03
    w2 = torch.randn(256, 1024, device="cuda", generator=g).bfloat16() * 0.03
    g1 = torch.rand(1024, device="cuda", generator=g).bfloat16() + 0.5
    x = torch.randn(1, 1024, device="cuda", generator=g).bfloat16()
    res = torch.randn(1, 1024, device="cuda", generator=g).bfloat16()
    assert gemv_dense_cuda.plan_rms(x, g1, w1, res, launch["cuda"]) is not None

    def step():
        y, h = cuda_dense.dense_rms(x, g1, w1, residual=res, launch=launch)
        y2, h2, normed = cuda_dense.dense_rms(
            y, g1, w2, residual=h, return_normed=True, launch=launch
        )
        return torch.cat([y2.float().flatten(), h2.float().flatten(), normed.float().flatten()])

    kc.assert_graph_replays(step, x)


def test_which_calls_it_takes():
    """plan_rms(): plan()'s rules, and the norm's weight [K] and the residual [1, K] in x's
    dtype, contiguous and aligned."""
    on = {"enabled": True}
    dev = kc.DEVICE
    x = torch.randn(1, 1024, dtype=torch.bfloat16, device=dev)
    w = torch.randn(256, 1024, dtype=torch.bfloat16, device=dev)
    gw = torch.ones(1024, dtype=torch.bfloat16, device=dev)
    if not RUNS:
        assert gemv_dense_cuda.plan_rms(x, gw, w, x, on) is None
        return
    assert gemv_dense_cuda.plan_rms(x, gw, w, x, on) is not None
    assert gemv_dense_cuda.plan_rms(x, gw, w, None, on) is not None
    assert gemv_dense_cuda.plan_rms(x, gw.float(), w, x, on) is None
    assert gemv_dense_cuda.plan_rms(x, gw[:1000], w, x, on) is None
    assert gemv_dense_cuda.plan_rms(x, gw, w, x.half(), on) is None
    assert gemv_dense_cuda.plan_rms(x, gw, w, x.expand(2, -1).contiguous(), on) is None


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("fp16,early", ((0, 0), (1, 0), (0, 1)))
@pytest.mark.parametrize("rows,warps,unroll", ((8, 8, 1), (4, 8, 2), (1, 1, 1)))
def test_source_compiles_for_hopper_without_spills(tmp_path, fp16, early, rows, warps, unroll):
    defines = [f"-DFP16={fp16}", f"-DEARLY={early}", f"-DROWS={rows}", f"-DWARPS={warps}"]
    defines.append(f"-DUNROLL={unroll}")
    spills = cs.spills(gemv_dense_cuda.SOURCE, defines, tmp_path)
    assert spills and max(spills) == 0, spills
    before, after = cs.entry_ptx(gemv_dense_cuda.SOURCE, "gemv_dense_rms", defines)
    if early:  # only the first step group's weights before the wait
        assert len(re.findall(r"ld\.global", before)) == rows * unroll
        assert not re.search(r"\b(st|atom|red)\.global", before)
    else:
        assert not re.search(cs.GLOBAL_ACCESS, before)  # the PDL rule
    assert after.index("griddepcontrol.launch_dependents") > after.rindex("ld.global.nc.v4")
