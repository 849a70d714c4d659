"""The cuda backend's CUDA C++ FP8 block-scale GEMV (sglang_cuda.kernels.gemv_fp8_cuda, compiled
by NVRTC) against the spec's reference through the conformance runner (the spec's inputs and
tolerances), at 1-8 rows, bf16 and fp16, N not a multiple of its 32-row blocks, bias, several
block widths; on a GPU only. Without one: which calls it takes, and (with nvcc) that the source
compiles for sm_90a without spills and keeps the PDL rule."""

from __future__ import annotations

import re

import cuda_source as cs
import kernel_checks as kc
import pytest
import torch
from sglang.ops.spec import Case, case_name
from sglang_cuda import nvrtc
from sglang_cuda.kernels import gemv_fp8, gemv_fp8_cuda

RUNS = kc.GPU and nvrtc.available() is None
gpu = pytest.mark.skipif(not RUNS, reason=f"needs a CUDA GPU and NVRTC ({nvrtc.available()})")


@pytest.fixture(autouse=True)
def _kernel_on(monkeypatch):
    """The kernel is off by default until timed on a GPU; these tests turn it on."""
    monkeypatch.setitem(gemv_fp8_cuda.GEMV_FP8_CUDA_LAUNCH, "enabled", True)


def _case(dt, m, k, n, bias):
    name = case_name(dt, f"M{m}", f"K{k}", f"N{n}", "block", "bias" if bias else "")
    params = {"m": m, "k": k, "n": n, "bias": bias, "scheme": "block", "static": False}
    return pytest.param(Case("gemm.fp8", name, dt, params), id=name)


CASES = [
    _case(torch.bfloat16, 1, 4096, 264, True),
    _case(torch.bfloat16, 3, 384, 96, False),
    _case(torch.bfloat16, 8, 1024, 130, True),
    _case(torch.float16, 1, 2048, 512, False),
    _case(torch.float16, 5, 256, 40, True),
]


def _cuda_only(launch=None):
    launch = {"enabled": True, **(launch or {})}  # (off by default until timed on a GPU)

    def run(x, weight, weight_scale, scheme, input_scale=None, block_size=(128, 128), bias=None):
        ws = weight_scale.float().contiguous()
        cfg = gemv_fp8_cuda.plan(x, weight, ws, block_size, launch)
        assert scheme == "block" and cfg is not None, "the CUDA kernel did not take this call"
        xq, xs = gemv_fp8.quantize_token_group(x, block_size[1])
        y = torch.empty((x.shape[0], weight.shape[0]), dtype=x.dtype, device=x.device)
        return gemv_fp8_cuda.gemv_fp8_block(xq, xs, weight, ws, bias, y, cfg)

    return run


@gpu
@pytest.mark.parametrize("case", CASES)
def test_gemv_fp8_cuda(case):
    kc.check("gemm.fp8", _cuda_only(), case)


@gpu
@pytest.mark.parametrize("warps", (1, 4, 16))
@pytest.mark.parametrize("case", [CASES[0], CASES[2]])
def test_gemv_fp8_cuda_warps(case, warps):
    kc.check("gemm.fp8", _cuda_only({"warps": warps}), case)


def test_which_calls_it_takes():
    w = torch.zeros(256, 1024, dtype=torch.float8_e4m3fn, device=kc.DEVICE)
    ws = torch.ones(2, 8, device=kc.DEVICE)
    x = torch.zeros(1, 1024, dtype=torch.bfloat16, device=kc.DEVICE)
    if not RUNS:
        assert gemv_fp8_cuda.plan(x, w, ws, (128, 128)) is None
        return
    assert gemv_fp8_cuda.plan(x, w, ws, (128, 128)) is not None
    assert gemv_fp8_cuda.plan(x, w, ws, (64, 128)) is None  # other block sizes: Triton
    assert gemv_fp8_cuda.plan(x.float(), w, ws, (128, 128)) is None
    assert gemv_fp8_cuda.plan(x.expand(9, -1), w, ws, (128, 128)) is None
    assert gemv_fp8_cuda.plan(x, w, ws, (128, 128), {"enabled": False}) is None


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("warps", (4, 16))
def test_source_compiles_for_hopper_without_spills(tmp_path, warps):
    spills = cs.spills(gemv_fp8_cuda.SOURCE, [f"-DWARPS={warps}"], tmp_path)
    assert spills and max(spills) == 0, spills
    before, after = cs.entry_ptx(gemv_fp8_cuda.SOURCE, "gemv_fp8_block_mma", [f"-DWARPS={warps}"])
    assert not re.search(cs.GLOBAL_ACCESS + r"|cp\.async", before), "PDL rule"
    assert after.index("griddepcontrol.launch_dependents") > after.rindex("mma.sync")
