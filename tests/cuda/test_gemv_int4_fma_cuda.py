"""The cuda backend's CUDA-core int4 GEMV at one row (sglang_cuda.kernels.gemv_int4_fma_cuda,
compiled by NVRTC) against the spec's reference through the conformance runner (the spec's
inputs and tolerances): bf16 and fp16, group sizes 32 to all of K, N not a multiple of its
32-column blocks, AWQ / GPTQ / float zero points, bias, each launch shape, and inside a CUDA
graph with PDL. On a GPU only. Without one: the kernel's arithmetic emulated step for step in
float64 / float16 on the CPU (the nibble masks read as f16 subnormals, x staged as the kernel
stages it, the f16 sums and their float32 scaling) passes the same conformance cases, so the
scheme's numerics hold before a GPU runs it; and (with nvcc) the source compiles for sm_90a
without spills under every launch's register cap and keeps the PDL rule."""

from __future__ import annotations

import re

import cuda_source as cs
import kernel_checks as kc
import pytest
import torch
from sglang.ops.gemm_int4 import VARIANTS
from sglang.ops.spec import Case, case_name
from sglang_cuda import nvrtc
from sglang_cuda.kernels import gemm_int4 as cuda_int4
from sglang_cuda.kernels import gemv_int4_cuda, gemv_int4_fma_cuda
from sglang_triton import gemm_int4

RUNS = kc.GPU and nvrtc.available() is None
gpu = pytest.mark.skipif(not RUNS, reason=f"needs a CUDA GPU and NVRTC ({nvrtc.available()})")


def _case(dt, k, n, variant, g, bias):
    name = case_name(dt, "M1", f"K{k}", f"N{n}", variant, f"G{g}", "bias" if bias else "")
    params = {"m": 1, "k": k, "n": n, "bias": bias, "variant": variant, "group_size": g}
    return pytest.param(Case("gemm.int4", name, dt, params, (VARIANTS[variant][2],)), id=name)


CASES = [
    _case(dt, k, n, variant, g, bias)
    for dt, k, n, g, bias, variants in (
        (torch.bfloat16, 4096, 264, 128, True, ("awq", "gptq", "awq-floatzeros")),
        (torch.bfloat16, 1152, 136, 128, False, ("awq",)),
        (torch.bfloat16, 512, 96, 64, False, ("gptq", "awq-floatzeros")),
        (torch.bfloat16, 224, 40, 32, True, ("awq",)),
        (torch.bfloat16, 1024, 8, 256, False, ("awq",)),  # 2 chunks a group
        (torch.bfloat16, 384, 48, 384, True, ("gptq",)),  # one group: all of K
        (torch.float16, 4096, 136, 128, True, ("awq", "gptq")),
        (torch.float16, 640, 200, 32, False, ("gptq", "awq-floatzeros")),
    )
    for variant in variants
]


def _fma_only(launch=None):
    launch = {"enabled": True, **(launch or {})}

    def run(x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None):
        cfg = gemv_int4_fma_cuda.plan(x, qweight, launch)
        assert cfg is not None, "the CUDA-core kernel did not take this call"
        return gemv_int4_fma_cuda.gemv_int4_fma(x, qweight, bias, cfg)

    return run


@gpu
@pytest.mark.parametrize("case", CASES)
def test_gemv_int4_fma_cuda(case):
    kc.check("gemm.int4", _fma_only(), case, prepare=gemm_int4.prepare)


LAUNCHES = (
    {"warps": 1},
    {"warps": 3},
    {"warps": 8, "buffers": 3, "per_sm": 16},
    {"warps": 24},
    {"warps": "auto", "early": True},
    {"warps": 16, "per_sm": 32},
)


@gpu
@pytest.mark.parametrize(
    "launch", LAUNCHES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items())
)
@pytest.mark.parametrize("case", [CASES[0], CASES[5], CASES[7], CASES[10]])
def test_gemv_int4_fma_cuda_launches(case, launch):
    kc.check("gemm.int4", _fma_only(launch), case, prepare=gemm_int4.prepare)


def _prepared(case, device):
    from sglang.ops import get_spec

    args = get_spec("gemm.int4").make_inputs(case, torch.Generator().manual_seed(case.seed))
    args = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    return args, gemm_int4.prepare(args)["qweight"]


@gpu
def test_agrees_with_the_tensor_core_kernel():
    """The Llama-8B o projection's shape: the same output as the tensor-core GEMV within the
    spread two float32 summation orders of 16-bit products allow."""
    case = Case(
        "gemm.int4",
        "o",
        torch.bfloat16,
        {"m": 1, "k": 4096, "n": 4096, "bias": False, "variant": "awq", "group_size": 128},
        ("int4:awq",),
    )
    args, w = _prepared(case, "cuda")
    x = args["x"]
    y = gemv_int4_fma_cuda.gemv_int4_fma(
        x, w, None, gemv_int4_fma_cuda.plan(x, w, {"enabled": True})
    )
    y_mma = gemv_int4_cuda.gemv_int4(x, w, None, gemv_int4_cuda.plan(x, w))
    torch.testing.assert_close(y.float(), y_mma.float(), rtol=2e-2, atol=2e-2)


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
    launch = {"cuda_fma": {"enabled": True, "early": True}}
    assert gemv_int4_fma_cuda.plan(x, w1, launch["cuda_fma"]) is not None

    def step():
        h = cuda_int4.int4(x, w1, "awq", 128, launch=launch)
        return cuda_int4.int4(
            (h * 0.05).to(x.dtype), w2, "gptq", 128, bias=a2["bias"], launch=launch
        )

    kc.assert_graph_replays(step, x)


def test_which_calls_it_takes():
    """plan(): one row of 16-bit x, no act-order, N % 4 == 0, chunks of 32, 64 or 128 rows, x
    within shared memory; off unless enabled; bad launch values raise."""
    args, w = _prepared(CASES[0].values[0], kc.DEVICE)
    x = args["x"]
    with pytest.raises(ValueError, match="buffers"):
        gemv_int4_fma_cuda.plan(x, w, {"buffers": 4})
    with pytest.raises(ValueError, match="per_sm"):
        gemv_int4_fma_cuda.plan(x, w, {"per_sm": 0})
    on = {"enabled": True}
    if not RUNS:
        assert gemv_int4_fma_cuda.plan(x, w, on) is None
        return
    assert gemv_int4_fma_cuda.plan(x, w, {"enabled": False}) is None
    assert gemv_int4_fma_cuda.plan(x, w, on)["steps"] == 4
    assert gemv_int4_fma_cuda.plan(x.float(), w, on) is None
    assert gemv_int4_fma_cuda.plan(x.expand(2, -1).contiguous(), w, on) is None  # two rows
    assert (
        gemv_int4_fma_cuda.plan(x, w._replace(perm=torch.arange(w.k, device=x.device)), on) is None
    )
    assert gemv_int4_fma_cuda.plan(x, w._replace(n=w.n - 2), on) is None


def test_block_warps():
    """The most warps a block with which the grid fits one wave of per_sm warps a processor:
    Llama-8B's int4 shapes on 132 processors at 24 warps a processor."""
    bw = gemv_int4_fma_cuda.block_warps
    assert bw(896, 132, 24, 2) == (3, 8)  # gate_up
    assert bw(192, 132, 24, 2) == (12, 2)  # qkv
    assert bw(128, 132, 24, 2) == (24, 1)  # o, down
    assert bw(100_000, 132, 24, 2) == (2, 12)  # more blocks than one wave holds: the least
    assert bw(8, 132, 24, 2) == (24, 1)


# --- the kernel's arithmetic, emulated on the CPU ------------------------------------------


def _f16(v: torch.Tensor) -> torch.Tensor:
    """float64 -> the nearest float16 (subnormals kept), back as float64."""
    return v.to(torch.float16).to(torch.float64)


def _f32(v: torch.Tensor) -> torch.Tensor:
    return v.to(torch.float32).to(torch.float64)


def _subnormals(words: torch.Tensor, mask: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of (words & mask) read as float16 (the kernel's operands), as float64."""
    v = words & mask
    lo = (v & 0xFFFF).to(torch.int16).view(torch.float16).to(torch.float64)
    hi = ((v >> 16) & 0xFFFF).to(torch.int16).view(torch.float16).to(torch.float64)
    return lo, hi


def emulate(x: torch.Tensor, w, bias, warps: int = 4, center: bool | None = None) -> torch.Tensor:
    """csrc/gemv_int4_fma.cu's arithmetic for x [1, K] on the CPU: the staged pairs, the codes as
    the masks make them (f16 subnormals, or centred q - 8), the packed f16 FMAs in the kernel's
    order (each one rounding), the float32 chunk sums, the warps' split. center: the kernel's
    CENTER (None: as it defaults, on for float16 x)."""
    center = x.dtype == torch.float16 if center is None else center
    device = x.device  # emulated on the CPU (float64 -> float16 on a GPU may round twice)
    x = x.cpu()
    fields = ("qweight", "scales", "zs", "sz")
    w = w._replace(**{f: getattr(w, f).cpu() for f in fields if getattr(w, f) is not None})
    bias = None if bias is None else bias.cpu()
    k, n = w.k, w.n
    ch, group_shift = gemv_int4_cuda._chunk_rows(w.group_size, k)
    wrows, chunks = ch // 8, k // ch
    xv = x[0].to(torch.float64).reshape(k // 8, 8)
    # staging: a power of two a chunk from its largest |x|
    amax = xv.abs().reshape(chunks, wrows * 8).amax(dim=1).to(torch.float32)
    e = ((amax.view(torch.int32) >> 23) & 0xFF) - 127
    e = e.clamp(-113, 100).to(torch.float64)
    x_even = 7 if center else 14
    even = torch.exp2(x_even - e).repeat_interleave(wrows)[:, None]
    odd = torch.exp2(x_even - 4 - e).repeat_interleave(wrows)[:, None]
    pairs = [  # (lo, hi) of the four staged pairs of each word row
        (_f16(xv[:, 0:1] * even), _f16(xv[:, 4:5] * even)),
        (_f16(xv[:, 1:2] * odd), _f16(xv[:, 5:6] * odd)),
        (_f16(xv[:, 2:3] * even), _f16(xv[:, 6:7] * even)),
        (_f16(xv[:, 3:4] * odd), _f16(xv[:, 7:8] * odd)),
    ]
    f2 = torch.exp2(e - x_even + (0 if center else 24))  # [chunks]
    rowsum = _f32(xv.to(torch.float32).sum(dim=1).to(torch.float64))  # [K/8]
    words = w.qweight[: k // 8, :n].to(torch.int64) & 0xFFFFFFFF  # [K/8, N]
    hi8 = words >> 8
    ops = [_codes(words, 0x000F000F, center), _codes(words, 0x00F000F0, center)]
    ops += [_codes(hi8, 0x000F000F, center), _codes(hi8, 0x00F000F0, center)]
    s, zs = (t.to(torch.float64) for t in w.float32_scales())
    y = torch.zeros(warps, 4, n, dtype=torch.float64)  # [warp, t, column]
    for c in range(chunks):
        warp = max(i for i in range(warps) if chunks * i // warps <= c)
        srow = c >> group_shift if group_shift < 31 else 0
        zterm = _f32(8 * s[srow] - zs[srow]) if center else -zs[srow]
        for t in range(4):
            lo = torch.zeros(n, dtype=torch.float64)
            hi = torch.zeros(n, dtype=torch.float64)
            rows = [c * wrows + 4 * i + t for i in range(wrows // 4)]
            for r in rows:
                for (q_lo, q_hi), (x_lo, x_hi) in zip(ops, pairs):
                    lo = _f16(q_lo[r] * x_lo[r] + lo)
                    hi = _f16(q_hi[r] * x_hi[r] + hi)
            d = _f32(lo + hi)
            sxt = _f32(sum(rowsum[r] for r in rows))
            part = _f32(s[srow] * _f32(d * f2[c]) + y[warp, t])
            y[warp, t] = _f32(zterm * sxt + part)
    out = y.sum(dim=(0, 1))
    if bias is not None:
        out = out + bias.reshape(-1).to(torch.float64)
    return out.to(x.dtype).reshape(1, n).to(device)


def _codes(words: torch.Tensor, mask: int, center: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The f16 operands the kernel makes of (words & mask): the subnormals as they stand, or
    centred: (mask | 1024's bits) - 1032 (the low nibble) or - 1152 (one nibble up)."""
    lo, hi = _subnormals(words, mask)
    if not center:
        return lo, hi
    up = mask == 0x00F000F0
    tiny = 2.0**-24
    # 1024 + the mask's integer (q, or 16 q), minus 1032 / 1152: exact in f16
    return tuple(_f16(1024 + v / tiny - (1152 if up else 1032)) for v in (lo, hi))


@pytest.mark.parametrize("center", (False, True), ids=("uncentred", "centred"))
@pytest.mark.parametrize("case", CASES)
def test_emulated_arithmetic_passes_conformance(case, center):
    """The scheme's numerics (without the GPU): the emulation through the conformance runner,
    each dtype with the codes the kernel uses for it by default and bfloat16 centred too; float16
    uncentred misses its tolerance (the next test)."""
    if case.dtype == torch.float16 and not center:
        pytest.skip("float16 x runs centred (CENTER defaults to FP16)")

    def run(x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None):
        return emulate(x, qweight, bias, center=center)

    kc.check("gemm.int4", run, case, prepare=gemm_int4.prepare)


def test_float16_needs_the_centred_codes():
    """Why CENTER defaults on for float16 x: uncentred f16 sums miss the float16 tolerance on a
    4096-deep case (the emulation through the conformance runner fails), centred pass."""
    from sglang.conformance.runner import PASSED, run_case
    from sglang.ops import get_spec

    case = CASES[9].values[0]
    assert case.dtype == torch.float16 and case.params["k"] == 4096

    def run_with(center):
        def run(x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None):
            return emulate(x, qweight, bias, center=center)

        return run_case(kc.target("gemm.int4", run, gemm_int4.prepare), get_spec("gemm.int4"), case)

    assert run_with(True).status == PASSED
    bad = run_with(False)
    assert bad.status != PASSED and "relative RMS" in bad.reason


def test_emulation_fails_with_a_wrong_pairing():
    """The emulation can fail: with x's odd pairs unscaled (the nibble one place up read as
    16 q), the same case is off by far more than the tolerance."""
    case = CASES[1].values[0]
    args, w = _prepared(case, "cpu")
    x = args["x"]
    ref = gemm_int4.int4(x.float(), w, "awq", w.group_size).to(torch.float64)
    good = emulate(x, w, None).to(torch.float64)
    assert (good - ref).abs().max() < 0.05 * ref.abs().max()
    # the mutant: x1 / x5 pairs met by the low nibbles' mask, i.e. nibbles 0 and 4 twice
    global _subnormals
    real = _subnormals
    try:
        _subnormals = lambda words, mask: real(words, 0x000F000F)  # noqa: E731
        bad = emulate(x, w, None).to(torch.float64)
        bad_centred = emulate(x, w, None, center=True).to(torch.float64)
    finally:
        _subnormals = real
    assert (bad - ref).abs().max() > 0.1 * ref.abs().max()
    assert (bad_centred - ref).abs().max() > 0.1 * ref.abs().max()


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize(
    "warps,min_blocks,buffers,early,fp16,center,steps",
    (  # the default launches of the 8B's shapes (3, 12, 24 warps), early, 3 buffers, centred
        (3, 8, 2, 0, 0, 0, 4),
        (12, 2, 2, 0, 1, 1, 4),
        (24, 1, 2, 1, 0, 0, 4),
        (24, 1, 2, 1, 0, 1, 2),
        (8, 2, 3, 0, 1, 1, 1),
        (1, 24, 2, 0, 0, 0, 1),
    ),
)
def test_source_compiles_for_hopper_without_spills(
    tmp_path, warps, min_blocks, buffers, early, fp16, center, steps
):
    defines = [f"-DFP16={fp16}", f"-DCENTER={center}", f"-DSTEPS={steps}", f"-DWARPS={warps}"]
    defines += [f"-DBUFFERS={buffers}"]
    defines += [f"-DEARLY={early}", f"-DMIN_BLOCKS={min_blocks}"]
    defines += [f"-DPAIRS={1 - fp16}"]  # bf16 with float16 scale pairs, fp16 with float32 scales
    spills = cs.spills(gemv_int4_fma_cuda.SOURCE, defines, tmp_path)
    assert spills and max(spills) == 0, spills
    before, after = cs.entry_ptx(gemv_int4_fma_cuda.SOURCE, "gemv_int4_fma", defines)
    # the PDL rule: x is read after the wait; EARLY: the weights' and scales' loads before it
    assert bool(early) == bool(re.search(cs.GLOBAL_ACCESS, before))
    assert "ld.global.nc.v4.u32" in after or early
    assert after.index("griddepcontrol.launch_dependents") > after.rindex("fma.rn.f16x2")
