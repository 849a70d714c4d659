"""The cuda backend's CUDA C++ int4 GEMV (sglang_cuda.kernels.gemv_int4_cuda, compiled by NVRTC)
against the spec's reference through the conformance runner (the spec's inputs and
tolerances), at 1-8 rows, bf16 and fp16, every group size it takes (32 to all of K), N not a
multiple of its 32-column blocks, AWQ / GPTQ / float zero points, bias, a strided x, and inside a
CUDA graph with PDL. On a GPU only; without one, what can be checked is checked: which calls it
takes, and (with nvcc) that its source compiles for sm_90a without spills and keeps the PDL rule
(no global memory access before griddepcontrol.wait)."""

from __future__ import annotations

import re

import cuda_source as cs
import kernel_checks as kc
import pytest
import torch
from sglang.ops import get_spec
from sglang.ops.gemm_int4 import VARIANTS
from sglang.ops.spec import Case, case_name
from sglang_cuda import nvrtc
from sglang_cuda.kernels import gemm_int4 as cuda_int4
from sglang_cuda.kernels import gemv_int4_cuda
from sglang_triton import gemm_int4

RUNS = kc.GPU and nvrtc.available() is None
gpu = pytest.mark.skipif(not RUNS, reason=f"needs a CUDA GPU and NVRTC ({nvrtc.available()})")


@pytest.fixture(autouse=True)
def _kernel_on(monkeypatch):
    """On whatever the default says (a launch table a benchmark may have changed)."""
    monkeypatch.setitem(gemv_int4_cuda.GEMV_INT4_CUDA_LAUNCH, "enabled", True)


def _case(dt, m, k, n, variant, g, bias):
    name = case_name(dt, f"M{m}", f"K{k}", f"N{n}", variant, f"G{g}", "bias" if bias else "")
    params = {"m": m, "k": k, "n": n, "bias": bias, "variant": variant, "group_size": g}
    return pytest.param(Case("gemm.int4", name, dt, params, (VARIANTS[variant][2],)), id=name)


CASES = [
    _case(dt, m, k, n, variant, g, bias)
    for dt, m, k, n, g, bias, variants in (
        (torch.bfloat16, 1, 4096, 264, 128, True, ("awq", "gptq", "awq-floatzeros")),
        (torch.bfloat16, 1, 1152, 136, 128, False, ("awq", "gptq-gidx")),
        (torch.bfloat16, 8, 1024, 72, 128, True, ("awq", "gptq")),
        (torch.bfloat16, 3, 512, 96, 64, False, ("gptq", "awq-floatzeros")),
        (torch.bfloat16, 5, 224, 40, 32, True, ("awq",)),
        (torch.bfloat16, 2, 1024, 8, 256, False, ("awq",)),  # 2 chunks a group
        (torch.bfloat16, 1, 384, 48, 384, True, ("gptq",)),  # one group: all of K
        (torch.float16, 1, 4096, 136, 128, True, ("awq", "gptq")),
        (torch.float16, 7, 640, 200, 32, False, ("gptq", "awq-floatzeros")),
    )
    for variant in variants
]


def _cuda_only(launch=None):
    launch = {"enabled": True, **(launch or {})}

    def run(x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None):
        cfg = gemv_int4_cuda.plan(x, qweight, launch)
        assert cfg is not None, "the CUDA kernel did not take this call"
        return gemv_int4_cuda.gemv_int4(x, qweight, bias, cfg)

    return run


@gpu
@pytest.mark.parametrize("pairs", (True, False), ids=("f16-pairs", "f32-scales"))
@pytest.mark.parametrize("case", CASES)
def test_gemv_int4_cuda(case, pairs, monkeypatch):
    """Both prepared scale layouts (16-bit cases' scales are float16-exact: pairs by default)."""
    monkeypatch.setattr(gemm_int4, "PAIRS", pairs)
    kc.check("gemm.int4", _cuda_only(), case, prepare=gemm_int4.prepare)


@gpu
@pytest.mark.parametrize("launch", ({"stages": 0}, {"stages": 4}, {"stages": 0, "x_smem": True}))
def test_both_scale_layouts_give_the_same_output(launch, monkeypatch):
    """The pairs' zs = z x s is formed in float32 as prepare forms the float32 layout's: the
    same sums bit for bit on every load path (register buffers, cp.async slots, staged x)."""
    args, pairs = _prepared(CASES[0].values[0], kc.DEVICE)
    monkeypatch.setattr(gemm_int4, "PAIRS", False)
    _, f32 = _prepared(CASES[0].values[0], kc.DEVICE)
    assert pairs.sz is not None and f32.sz is None
    x, bias = args["x"], args["bias"]
    want = gemv_int4_cuda.gemv_int4(x, f32, bias, gemv_int4_cuda.plan(x, f32, launch))
    got = gemv_int4_cuda.gemv_int4(x, pairs, bias, gemv_int4_cuda.plan(x, pairs, launch))
    assert torch.equal(got, want)


LAUNCHES = (
    {"warps": 1},
    {"warps": 4, "stages": 2},
    {"warps": 16, "stages": 3},
    {"warps": 8, "stages": 0},  # two register buffers instead of cp.async
    {"warps": 16, "stages": 0},
    {"warps": 8, "early": True},  # weight copies before griddepcontrol.wait
    {"warps": 8, "stages": 0, "x_smem": True},  # x staged in shared memory, 3 weight buffers
    {"warps": 16, "stages": 0, "x_smem": True, "buffers": 2},
    {"warps": 1, "stages": 0, "x_smem": True},
    {"warps": 4, "stages": 0, "prefetch": 2},  # L2 prefetch ahead of the register buffers
    {"warps": 1, "stages": 0, "prefetch": 8},
    {"warps": 8, "stages": 0, "ring": 4},  # a ring of 16 steps of weights a lane
    {"warps": 2, "stages": 0, "ring": 1},
    {"warps": 16, "stages": 0, "ring": 3},
    {"warps": 8, "stages": 0, "carveout": 100},  # the preferred shared memory share, fixed
)


@gpu
@pytest.mark.parametrize(
    "launch",
    LAUNCHES,
    ids=lambda c: (
        f"w{c['warps']}-s{c.get('stages', 4)}"
        + ("-early" if c.get("early") else "")
        + (f"-xsmem{c.get('buffers', 3)}" if c.get("x_smem") else "")
        + (f"-prefetch{c['prefetch']}" if c.get("prefetch") else "")
        + (f"-ring{c['ring']}" if c.get("ring") else "")
        + (f"-carveout{c['carveout']}" if c.get("carveout") is not None else "")
    ),
)
@pytest.mark.parametrize("case", [CASES[0], CASES[6], CASES[10]])
def test_gemv_int4_cuda_launches(case, launch):
    kc.check("gemm.int4", _cuda_only(launch), case, prepare=gemm_int4.prepare)


def _prepared(case, device):
    args = get_spec("gemm.int4").make_inputs(case, torch.Generator().manual_seed(case.seed))
    args = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    return args, gemm_int4.prepare(args)["qweight"]


@gpu
def test_strided_x_and_the_triton_kernel_agree():
    """x a column slice of a wider tensor (row stride > K): the same output as the contiguous x,
    and as the Triton tensor-core GEMV on the same prepared weight."""
    case = CASES[0].values[0]
    args, w = _prepared(case, "cuda")
    wide = torch.zeros(4, w.k + 64, dtype=torch.bfloat16, device="cuda")
    wide[:, 32 : 32 + w.k] = torch.randn(4, w.k, device="cuda")
    x = wide[:, 32 : 32 + w.k]
    assert x.stride(0) == w.k + 64
    y = cuda_int4.int4(x, w, "awq", w.group_size)
    y_contig = cuda_int4.int4(x.contiguous(), w, "awq", w.group_size)
    torch.testing.assert_close(y, y_contig, rtol=0, atol=0)
    from sglang_triton import gemv_int4

    y_triton = gemv_int4.gemv_int4(x.contiguous(), w)
    torch.testing.assert_close(y.float(), y_triton.float(), rtol=1e-2, atol=1e-2)


@gpu
def test_in_a_cuda_graph_with_pdl():
    """Two GEMVs in a row (the second reads the first's output) captured in a graph, launched
    with PDL as in decode: the replay equals the eager calls."""
    from sglang_triton import pdl

    assert pdl.enabled(torch.device("cuda")) == (torch.cuda.get_device_capability()[0] >= 9)
    case1 = Case(
        "gemm.int4",
        "a",
        torch.bfloat16,
        {"m": 1, "k": 1024, "n": 2048, "bias": False, "variant": "awq", "group_size": 128},
        ("int4:awq",),
    )
    case2 = Case(
        "gemm.int4",
        "b",
        torch.bfloat16,
        {"m": 1, "k": 2048, "n": 512, "bias": True, "variant": "gptq", "group_size": 128},
        ("int4:gptq",),
    )
    a1, w1 = _prepared(case1, "cuda")
    a2, w2 = _prepared(case2, "cuda")
    x = a1["x"].clone()

    def step():
        h = cuda_int4.int4(x, w1, "awq", 128)
        return cuda_int4.int4((h * 0.05).to(x.dtype), w2, "gptq", 128, bias=a2["bias"])

    kc.assert_graph_replays(step, x)


def test_which_calls_it_takes():
    """plan(): 16-bit x of 1-8 rows, no act-order, N % 4 == 0, a group size it can chunk; the
    rest goes to the Triton kernels (and so does everything where NVRTC or a GPU is missing)."""
    args, w = _prepared(CASES[0].values[0], kc.DEVICE)
    x = args["x"]
    with pytest.raises(ValueError, match="ring"):
        gemv_int4_cuda.plan(x, w, {"ring": 9})
    if not RUNS:
        assert gemv_int4_cuda.plan(x, w) is None
        return
    assert gemv_int4_cuda.plan(x, w)["steps"] == 4
    assert gemv_int4_cuda.plan(x.float(), w) is None
    assert gemv_int4_cuda.plan(x.expand(9, -1).contiguous(), w) is None  # more than 8 rows
    assert gemv_int4_cuda.plan(x, w, {"enabled": False}) is None
    assert gemv_int4_cuda.plan(x, w._replace(perm=torch.arange(w.k, device=x.device))) is None
    assert gemv_int4_cuda.plan(x, w._replace(n=w.n - 2)) is None


def test_chunk_rows():
    """(input rows a chunk, log2 chunks a group) from the group size and K."""
    rows = gemv_int4_cuda._chunk_rows
    assert rows(128, 4096) == (128, 0) and rows(64, 512) == (64, 0) and rows(32, 224) == (32, 0)
    assert rows(256, 1024) == (128, 1) and rows(512, 4096) == (128, 2)
    assert rows(4096, 4096) == (128, 31) and rows(384, 384) == (128, 31)  # one group
    assert rows(48, 96) is None and rows(384, 768) is None  # 3 chunks a group: not a power of 2
    assert rows(128, 4100) is None and rows(96, 192) == (96, 0)


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize(
    "stages,early,xsmem,prefetch,ring",
    (
        (0, 0, 0, 0, 0),
        (2, 0, 0, 0, 0),
        (4, 0, 0, 0, 0),
        (4, 1, 0, 0, 0),
        (0, 0, 2, 0, 0),
        (0, 0, 3, 0, 0),
        (0, 0, 0, 4, 0),
        (0, 0, 0, 0, 4),  # the ring: 4 chunks, 8 warps x 2 blocks (at most 128 registers)
    ),
)
@pytest.mark.parametrize("fp16,pairs", ((0, 1), (1, 0)))
@pytest.mark.parametrize("steps", (1, 4))
def test_source_compiles_for_hopper_without_spills(
    tmp_path, fp16, pairs, steps, stages, early, xsmem, prefetch, ring
):
    defines = [f"-DFP16={fp16}", f"-DSTEPS={steps}", "-DWARPS=8", f"-DSTAGES={stages}"]
    defines += [f"-DPAIRS={pairs}"]
    defines += [f"-DEARLY={early}", f"-DXSMEM={int(xsmem > 0)}", f"-DBUFFERS={xsmem or 2}"]
    defines += [f"-DPREFETCH={prefetch}", f"-DRING={ring * steps}"]
    defines += [f"-DMIN_BLOCKS={2 if ring else 1}"]
    spills = cs.spills(gemv_int4_cuda.SOURCE, defines, tmp_path)
    assert spills and max(spills) == 0, spills
    before, after = cs.entry_ptx(gemv_int4_cuda.SOURCE, "gemv_int4_mma", defines)
    # the PDL rule (EARLY: the weights' cp.async copies may start, x is read after the wait)
    assert not re.search(cs.GLOBAL_ACCESS + ("" if early else r"|cp\.async"), before)
    assert bool(early) == ("cp.async" in before)
    assert after.index("griddepcontrol.launch_dependents") > after.rindex("mma.sync")
