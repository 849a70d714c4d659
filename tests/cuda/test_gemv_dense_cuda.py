"""The cuda backend's CUDA C++ dense GEMV (sglang_cuda.kernels.gemv_dense_cuda, compiled by NVRTC)
against the spec's reference through the conformance runner (the spec's inputs and
tolerances): one row of bf16 and fp16 x, K a multiple of 256 or not, N not a multiple of a
block's rows, bias, every launch shape it takes, and inside a CUDA graph with PDL. On a GPU
only; without one, what can be checked is checked: which calls it takes, the launch rule, and
(with nvcc) that its source compiles for sm_90a without spills and keeps the PDL rule (no
global memory access before griddepcontrol.wait)."""

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


def _case(dt, k, n, bias):
    name = case_name(dt, "M1", f"K{k}", f"N{n}", "bias" if bias else "")
    return Case("gemm.dense", name, dt, {"m": 1, "k": k, "n": n, "bias": bias}, ())


CASES = [
    _case(torch.bfloat16, 4096, 4096, False),
    _case(torch.bfloat16, 2048, 5120, True),  # Qwen3-30B-A3B's qkv
    _case(torch.bfloat16, 2048, 128, False),  # its router
    _case(torch.bfloat16, 1000, 135, True),  # K % 256 != 0, N % 8 != 0
    _case(torch.bfloat16, 14336, 264, False),  # long K: several unrolled groups a warp
    _case(torch.float16, 4096, 520, True),
    _case(torch.float16, 264, 33, False),
]
IDS = [c.name for c in CASES]


def _cuda_only(launch=None):
    # (max_elements raised: the kernel is checked on weights past the size it serves by default)
    launch = {"enabled": True, "max_elements": 1 << 30, **(launch or {})}

    def run(x, weight, bias=None):
        cfg = gemv_dense_cuda.plan(x, weight, launch)
        assert cfg is not None, "the CUDA kernel did not take this call"
        return gemv_dense_cuda.gemv_dense(x, weight, bias, cfg)

    return run


@gpu
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gemv_dense_cuda(case):
    kc.check("gemm.dense", _cuda_only(), case)


LAUNCHES = (
    {"rows": 8, "warps": 4, "unroll": 2, "early": True},
    {"rows": 1, "warps": 1, "unroll": 1},
    {"rows": 2, "warps": 8, "unroll": 4},
    {"rows": 16, "warps": 4, "unroll": 2},
    {"rows": 8, "warps": 2, "unroll": 3},
)


@gpu
@pytest.mark.parametrize(
    "launch", LAUNCHES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items())
)
@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[6]], ids=[IDS[0], IDS[3], IDS[6]])
def test_gemv_dense_cuda_launches(case, launch):
    kc.check("gemm.dense", _cuda_only(launch), case)


@gpu
def test_in_a_cuda_graph_with_pdl():
    """Two GEMVs in a row (the second reads the first's output) captured in a graph, launched
    with PDL as in decode: the replay equals the eager calls, through the registered op."""
    launch = {"cuda": {"enabled": True}}
    g = torch.Generator(device="cuda").manual_seed(0)
    w1 = torch.randn(2048, 1024, device="cuda", generator=g).bfloat16() * 0.03
    w2 = torch.randn(512, 2048, device="cuda", generator=g).bfloat16() * 0.03
    b2 = torch.randn(512, device="cuda", generator=g).bfloat16()
    x = torch.randn(1, 1024, device="cuda", generator=g).bfloat16()
    assert gemv_dense_cuda.plan(x, w1, launch["cuda"]) is not None

    def step():
        h = cuda_dense.dense(x, w1, launch=launch)
        return cuda_dense.dense(h, w2, b2, launch=launch)

    kc.assert_graph_replays(step, x)


def test_which_calls_it_takes():
    """plan(): one row of 16-bit x, W of the same dtype with contiguous 16-byte-aligned rows,
    K % 8 == 0, the switch on; the rest goes to the shared path (and so does everything where
    NVRTC or a GPU is missing)."""
    on = {"enabled": True}
    dev = kc.DEVICE
    x = torch.randn(1, 1024, dtype=torch.bfloat16, device=dev)
    w = torch.randn(256, 1024, dtype=torch.bfloat16, device=dev)
    if not RUNS:
        assert gemv_dense_cuda.plan(x, w, on) is None
        return
    assert gemv_dense_cuda.plan(x, w, on) is not None
    assert gemv_dense_cuda.plan(x, w, {"enabled": False}) is None
    assert gemv_dense_cuda.plan(x.expand(2, -1).contiguous(), w, on) is None  # two rows
    assert gemv_dense_cuda.plan(x.float(), w.float(), on) is None
    assert gemv_dense_cuda.plan(x[:, :1020], w[:, :1020].contiguous(), on) is None  # K % 8
    assert gemv_dense_cuda.plan(x[:, 8:], w[:, 8:], on) is not None  # strided rows, aligned
    assert gemv_dense_cuda.plan(x[:, 4:1004], w[:, 4:1004], on) is None  # rows not aligned
    assert gemv_dense_cuda.plan(x, w, {**on, "max_elements": 256 * 1024 - 1}) is None


def test_launch_shape():
    """rows: 8 while that gives two blocks a processor, fewer for a small N; warps: about
    `unroll` 256-element steps each, 1 to 8; explicit values are taken as they are."""
    auto = {"rows": "auto", "warps": "auto", "unroll": 2}
    shape = gemv_dense_cuda.launch_shape
    assert shape(5120, 2048, 132, auto) == (8, 4, 2)  # Qwen3's qkv: 640 blocks
    assert shape(2048, 4096, 132, auto) == (4, 8, 2)  # its o: 512 blocks of 4 rows
    assert shape(128, 2048, 132, auto) == (1, 4, 2)  # its router: 128 blocks of one row
    assert shape(4096, 14336, 132, auto) == (8, 8, 2)  # 56 steps: 7 a warp
    assert shape(64, 200, 132, auto) == (1, 1, 2)
    assert shape(64, 200, 132, {"rows": 4, "warps": 2, "unroll": 3}) == (4, 2, 3)
    one = {**auto, "unroll": 1}  # the default: a step a warp, up to 8 warps
    assert shape(5120, 2048, 132, one) == (8, 8, 1) and shape(2048, 1024, 132, one) == (4, 4, 1)


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("fp16", (0, 1))
@pytest.mark.parametrize("rows,warps,unroll", ((8, 4, 2), (16, 8, 2), (4, 8, 4), (1, 1, 1)))
def test_source_compiles_for_hopper_without_spills(tmp_path, fp16, rows, warps, unroll):
    defines = [f"-DFP16={fp16}", f"-DROWS={rows}", f"-DWARPS={warps}", f"-DUNROLL={unroll}"]
    spills = cs.spills(gemv_dense_cuda.SOURCE, defines, tmp_path)
    assert spills and max(spills) == 0, spills
    before, after = cs.entry_ptx(gemv_dense_cuda.SOURCE, "gemv_dense", defines)
    assert not re.search(cs.GLOBAL_ACCESS, before)  # the PDL rule
    # the main loop's 16-byte loads before the release (the bias is read after it)
    assert after.index("griddepcontrol.launch_dependents") > after.rindex("ld.global.nc.v4")


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("rows,unroll", ((8, 1), (4, 2)))
def test_early_reads_only_the_weights_before_the_wait(tmp_path, rows, unroll):
    """EARLY: before griddepcontrol.wait only the first step group's weight vectors (rows x
    unroll) are read and nothing is written; x is read after it; no spills."""
    defines = ["-DEARLY=1", f"-DROWS={rows}", "-DWARPS=8", f"-DUNROLL={unroll}"]
    spills = cs.spills(gemv_dense_cuda.SOURCE, defines, tmp_path)
    assert spills and max(spills) == 0, spills
    before, _ = cs.entry_ptx(gemv_dense_cuda.SOURCE, "gemv_dense", defines)
    assert not re.search(r"\b(st|atom|red)\.global", before)
    assert len(re.findall(r"ld\.global", before)) == rows * unroll
    assert len(re.findall(r"ld\.global\.nc\.v4", before)) == rows * unroll
