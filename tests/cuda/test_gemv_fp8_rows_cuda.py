"""The cuda backend's CUDA C++ FP8 block-scale GEMV on the CUDA cores (sglang_cuda.kernels.
gemv_fp8_rows_cuda: one row of x, quantized inside the kernel) against the spec's reference
through the conformance runner (the spec's inputs and tolerances): bf16 and fp16 x, K from one
group to Llama-8B's down projection, N not a multiple of a block's rows and across 128-row scale
blocks, bias, both weight conversions and every launch shape; x with an all-zero group and with
values at f16's edge against the spec's reference directly; inside a CUDA graph with PDL through
the registered op. On a GPU only; without one: which calls it takes, the launch rule, and (with
nvcc) that the source compiles for sm_90a without spills and keeps the PDL rule."""

from __future__ import annotations

import re

import cuda_source as cs
import kernel_checks as kc
import pytest
import torch
from sglang.ops import get_spec
from sglang.ops.gemm_fp8 import fp8 as fp8_reference
from sglang.ops.quant import fp8 as q8
from sglang.ops.spec import Case, case_name
from sglang_cuda import nvrtc
from sglang_cuda.kernels import gemm_fp8, gemv_fp8_rows_cuda

RUNS = kc.GPU and nvrtc.available() is None
gpu = pytest.mark.skipif(not RUNS, reason=f"needs a CUDA GPU and NVRTC ({nvrtc.available()})")


def _case(dt, k, n, bias):
    name = case_name(dt, "M1", f"K{k}", f"N{n}", "block", "bias" if bias else "")
    params = {"m": 1, "k": k, "n": n, "bias": bias, "scheme": "block", "static": False}
    return Case("gemm.fp8", name, dt, params)


CASES = [
    _case(torch.bfloat16, 4096, 264, True),
    _case(torch.bfloat16, 14336, 136, False),  # the 8B's down projection's K: 28 steps
    _case(torch.bfloat16, 1152, 300, True),  # K % 512 != 0; N across three scale rows
    _case(torch.float16, 2048, 512, False),
    _case(torch.float16, 128, 40, True),  # one group: lanes past K; fewer rows than a block
]
IDS = [c.name for c in CASES]


def _cuda_only(launch=None):
    launch = {"enabled": True, **(launch or {})}

    def run(x, weight, weight_scale, scheme, input_scale=None, block_size=(128, 128), bias=None):
        ws = weight_scale.float().contiguous()
        cfg = gemv_fp8_rows_cuda.plan(x, weight, ws, block_size, launch)
        assert scheme == "block" and cfg is not None, "the CUDA kernel did not take this call"
        return gemv_fp8_rows_cuda.gemv_fp8_rows(x, weight, ws, bias, cfg)

    return run


@gpu
@pytest.mark.parametrize("cvt", (0, 1))
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gemv_fp8_rows_cuda(case, cvt):
    kc.check("gemm.fp8", _cuda_only({"cvt": cvt}), case)


LAUNCHES = (
    {"rows": 8, "warps": 8, "unroll": 1, "min_blocks": 1},
    {"rows": 8, "warps": 4, "unroll": 2, "early": True},
    {"rows": 2, "warps": 8, "unroll": 1, "early": True, "cvt": 0},
    {"rows": 1, "warps": 1, "unroll": 1},
    {"rows": 4, "warps": 8, "unroll": 2},
    {"rows": 16, "warps": 4, "unroll": 1},
    {"rows": 2, "warps": 2, "unroll": 3},
)


@gpu
@pytest.mark.parametrize(
    "launch", LAUNCHES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items())
)
@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4]], ids=[IDS[0], IDS[2], IDS[4]])
def test_gemv_fp8_rows_cuda_launches(case, launch):
    kc.check("gemm.fp8", _cuda_only(launch), case)


@gpu
@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float16))
def test_zero_group_and_large_values(dtype):
    """A group of x that is all zeros (scale 0: the spec divides by 1 instead), groups whose
    values reach 6e4 (their codes' products with the weight's stay finite in f16) and a group
    whose scale is a subnormal float32, against the spec's reference in float64 within the
    spec's rel_rms for the dtype."""
    g = torch.Generator().manual_seed(3)
    k, n = 1024, 256
    x = torch.randn(1, k, generator=g)
    x[0, 128:256] = 0
    x[0, 512:640] *= 1.5e4
    x[0, 700] = -6e4
    x[0, 768:896] = 0
    x[0, 800] = 1e-37  # bf16: a subnormal float32 scale (1 / scale overflows); fp16: 0
    w = torch.randn(n, k, generator=g) * 0.05
    weight, ws = q8.quantize_fp8_block(w, (128, 128))
    x = x.to(dtype)
    ref = fp8_reference(x.double(), weight, ws.double(), "block").double()
    xd, weight, ws = x.cuda(), weight.cuda(), ws.float().cuda()
    out = _cuda_only()(xd, weight, ws, "block").double().cpu()
    assert torch.isfinite(out).all()
    err = (out - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()
    assert err < get_spec("gemm.fp8").tolerances[dtype].rel_rms, err


@gpu
def test_in_a_cuda_graph_with_pdl(monkeypatch):
    """Two block-FP8 GEMVs in a row (the second reads the first's output) through the
    registered gemm.fp8, captured in a graph and launched with PDL as in decode: the replay
    equals the eager calls, and the CUDA kernel took both calls."""
    monkeypatch.setitem(gemv_fp8_rows_cuda.GEMV_FP8_ROWS_CUDA_LAUNCH, "enabled", True)
    g = torch.Generator().manual_seed(0)
    w1, s1 = q8.quantize_fp8_block(torch.randn(2048, 1024, generator=g) * 0.03, (128, 128))
    w2, s2 = q8.quantize_fp8_block(torch.randn(512, 2048, generator=g) * 0.03, (128, 128))
    w1, s1, w2, s2 = w1.cuda(), s1.float().cuda(), w2.cuda(), s2.float().cuda()
    x = torch.randn(1, 1024, generator=g).bfloat16().cuda()
    assert gemv_fp8_rows_cuda.plan(x, w1, s1, (128, 128)) is not None

    def step():
        h = gemm_fp8.fp8(x, w1, s1, "block")
        return gemm_fp8.fp8(h, w2, s2, "block")

    kc.assert_graph_replays(step, x)


def test_which_calls_it_takes():
    """plan(): one row of 16-bit x, an e4m3 weight with contiguous 16-byte-aligned rows,
    128x128 float32 block scales, K % 128 == 0, the switch on; the rest goes to the Triton
    kernels (and so does everything where NVRTC or a GPU is missing)."""
    on = {"enabled": True}
    dev = kc.DEVICE
    w = torch.zeros(256, 1024, dtype=torch.float8_e4m3fn, device=dev)
    ws = torch.ones(2, 8, device=dev)
    x = torch.zeros(1, 1024, dtype=torch.bfloat16, device=dev)
    if not RUNS:
        assert gemv_fp8_rows_cuda.plan(x, w, ws, (128, 128), on) is None
        return
    assert gemv_fp8_rows_cuda.plan(x, w, ws, (128, 128), on) is not None
    assert gemv_fp8_rows_cuda.plan(x, w, ws, (128, 128)) is not None  # on by default
    assert gemv_fp8_rows_cuda.plan(x, w, ws, (128, 128), {"enabled": False}) is None
    assert gemv_fp8_rows_cuda.plan(x, w, ws, (64, 128), on) is None
    assert gemv_fp8_rows_cuda.plan(x.float(), w, ws, (128, 128), on) is None
    assert gemv_fp8_rows_cuda.plan(x.expand(2, -1).contiguous(), w, ws, (128, 128), on) is None
    # rows apart by a stride that keeps them 16-byte aligned are taken; other strides are not
    assert gemv_fp8_rows_cuda.plan(x[:, :896], w[:, :896], ws, (128, 128), on) is not None
    w_odd = torch.zeros(256, 1032, dtype=torch.float8_e4m3fn, device=dev)[:, :1024]
    assert gemv_fp8_rows_cuda.plan(x, w_odd, ws, (128, 128), on) is None
    assert gemv_fp8_rows_cuda.plan(x, w, ws.double(), (128, 128), on) is None
    assert gemv_fp8_rows_cuda.plan(x, w, ws[:1], (128, 128), on) is None  # too few scale rows


def test_launch_shape():
    """rows: 8 while that gives two blocks a processor, fewer for a small N; warps: about
    `unroll` 512-column steps each, 1 to 8; explicit values are taken as they are."""
    auto = {"rows": "auto", "warps": "auto", "unroll": 1}
    shape = gemv_fp8_rows_cuda.launch_shape
    assert shape(28672, 4096, 132, auto) == (8, 8, 1)  # Llama-8B's gate_up: 8 steps
    assert shape(4096, 14336, 132, auto) == (8, 8, 1)  # its down: 28 steps
    assert shape(1024, 4096, 132, auto) == (2, 8, 1)  # its k/v: 512 blocks of two rows
    assert shape(128, 1024, 132, {**auto, "unroll": 2}) == (1, 1, 2)
    assert shape(64, 256, 132, {"rows": 4, "warps": 2, "unroll": 3}) == (4, 2, 3)


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("fp16,cvt", ((0, 0), (0, 1), (1, 1)))
@pytest.mark.parametrize(
    "rows,warps,unroll,blocks",
    ((8, 8, 1, 2), (8, 8, 1, 1), (16, 4, 1, 2), (4, 8, 2, 2), (1, 1, 1, 2)),
)
def test_source_compiles_for_hopper_without_spills(
    tmp_path, fp16, cvt, rows, warps, unroll, blocks
):
    defines = [f"-DFP16={fp16}", f"-DCVT={cvt}", f"-DROWS={rows}", f"-DWARPS={warps}"]
    defines += [f"-DUNROLL={unroll}", f"-DMIN_BLOCKS={blocks}"]
    spills = cs.spills(gemv_fp8_rows_cuda.SOURCE, defines, tmp_path)
    assert spills and max(spills) == 0, spills
    before, after = cs.entry_ptx(gemv_fp8_rows_cuda.SOURCE, "gemv_fp8_rows", defines)
    assert not re.search(cs.GLOBAL_ACCESS, before)  # the PDL rule
    # the main loop's 16-byte loads before the release (the bias is read after it)
    assert after.index("griddepcontrol.launch_dependents") > after.rindex("ld.global.nc.v4")


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("rows,unroll", ((8, 1), (4, 2), (16, 1)))
def test_early_reads_only_the_weights_before_the_wait(tmp_path, rows, unroll):
    """EARLY: before griddepcontrol.wait only the first step group's weight vectors (rows x
    unroll) and block scales (unroll) are read, nothing is written, and x is read after it;
    the build has no spills."""
    defines = ["-DEARLY=1", f"-DROWS={rows}", "-DWARPS=8", f"-DUNROLL={unroll}"]
    spills = cs.spills(gemv_fp8_rows_cuda.SOURCE, defines, tmp_path)
    assert spills and max(spills) == 0, spills
    before, _ = cs.entry_ptx(gemv_fp8_rows_cuda.SOURCE, "gemv_fp8_rows", defines)
    assert not re.search(r"\b(st|atom|red)\.global", before)
    assert len(re.findall(r"ld\.global\.nc\.v4", before)) == rows * unroll
    assert len(re.findall(r"ld\.global\.nc\.f32", before)) == unroll
    assert len(re.findall(r"ld\.global", before)) == rows * unroll + unroll
