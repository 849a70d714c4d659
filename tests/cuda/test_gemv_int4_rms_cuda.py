"""gemm.int4_rms on cuda (sglang_cuda.kernels.gemm_int4.int4_rms) against the spec's reference
through the conformance runner: the two-launch path (Triton's norm.rms, then gemm.int4) in
Triton's interpreter without a GPU; on a GPU also the tensor-core int4 GEMV with the norm inside
(gemv_int4_cuda.gemv_int4_rms) at one row: bf16 and fp16, with and without a residual, the
normed row returned, bias, AWQ / GPTQ / float zero points, group sizes 32 to all of K, several
launch shapes, Llama-8B's qkv and gate_up shapes, a large residual stream in float16, and
inside a CUDA graph with PDL. With nvcc: the kernel compiles for sm_90a without spills and
keeps the PDL rule."""

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


def _two_launches(**kw):
    return cuda_int4.int4_rms(**kw, launch={"cuda": {"rms": False}})


@pytest.mark.parametrize(
    "case",
    kc.cases(
        "gemm.int4_rms",
        lambda c: (
            c.dtype == torch.bfloat16
            and (c.params["m"], c.params["k"], c.params["variant"])
            in ((1, 256, "awq"), (7, 224, "gptq-actorder"))
        ),
    ),
    ids=lambda c: c.name,
)
def test_two_launch_path(case):
    kc.check("gemm.int4_rms", _two_launches, case)


def _case(dt, k, n, g, variant, bias, residual, normed):
    parts = (variant, f"G{g}", "residual" if residual else "", "normed" if normed else "")
    name = case_name(dt, "M1", f"K{k}", f"N{n}", *parts, "bias" if bias else "")
    params = {"m": 1, "k": k, "n": n, "bias": bias, "variant": variant, "group_size": g}
    params |= {"residual": residual, "normed": normed}
    return Case("gemm.int4_rms", name, dt, params, (VARIANTS[variant][2],))


CASES = [
    _case(torch.bfloat16, 4096, 6144, 128, "awq", False, True, False),  # Llama-8B's qkv
    _case(torch.bfloat16, 4096, 28672, 128, "gptq", False, True, False),  # its gate_up
    _case(torch.bfloat16, 4096, 264, 128, "awq-floatzeros", True, True, True),
    _case(torch.bfloat16, 1024, 136, 32, "gptq-gidx", True, False, False),  # no residual
    _case(torch.bfloat16, 1024, 72, 256, "awq", False, True, True),  # 2 chunks a group
    _case(torch.bfloat16, 384, 48, 384, "gptq", True, True, False),  # one group: all of K
    _case(torch.float16, 4096, 136, 128, "awq", True, True, True),
    _case(torch.float16, 640, 200, 64, "gptq", False, False, True),
]
IDS = [c.name for c in CASES]


def _prepared_run(launch=None):
    launch = {"enabled": True, "rms": True, **(launch or {})}

    def run(x, norm_weight, qweight, eps=1e-6, bias=None, residual=None, return_normed=False, **_):
        cfg = gemv_int4_cuda.plan_rms(x, norm_weight, qweight, residual, launch)
        assert cfg is not None, "the CUDA kernel did not take this call"
        return gemv_int4_cuda.gemv_int4_rms(
            x, norm_weight, qweight, eps, bias, residual, return_normed, cfg
        )

    return run


@gpu
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gemv_int4_rms_cuda(case):
    kc.check("gemm.int4_rms", _prepared_run(), case, prepare=gemm_int4.prepare)


@gpu
@pytest.mark.parametrize(
    "launch",
    ({"warps": 1}, {"warps": 4, "rms_early": True}, {"warps": 16}, {"warps": 8, "rms_early": True}),
    ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()),
)
@pytest.mark.parametrize("case", [CASES[2], CASES[4], CASES[6]], ids=[IDS[2], IDS[4], IDS[6]])
def test_gemv_int4_rms_cuda_launches(case, launch):
    kc.check("gemm.int4_rms", _prepared_run(launch), case, prepare=gemm_int4.prepare)


def _inputs(case, device):
    args = get_spec("gemm.int4_rms").make_inputs(case, torch.Generator().manual_seed(case.seed))
    args = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    return args, gemm_int4.prepare(args)["qweight"]


@gpu
def test_float16_large_residual_stream():
    """h up to ~3e4 (a residual stream's outliers) times a norm weight of up to 4: h g is past
    float16's range, the normed row is not; the kernel stages h g / 256, so y stays finite and
    matches the two-launch path."""
    args, w = _inputs(CASES[6], "cuda")
    x, res = args["x"], args["residual"]
    x[0, :64] = 3.0e4
    res[0, :64] = -1.0e3
    gw = args["norm_weight"] * 4
    launch = {"cuda": {"enabled": True, "rms": True}}
    y, h, normed = cuda_int4.int4_rms(
        x, gw, w, "awq", w.group_size, residual=res, return_normed=True, launch=launch
    )
    y2, h2, normed2 = _two_launches(
        x=x,
        norm_weight=gw,
        qweight=w,
        packing="awq",
        group_size=w.group_size,
        residual=res,
        return_normed=True,
    )
    assert torch.isfinite(y).all()
    torch.testing.assert_close(h, h2, rtol=0, atol=0)
    torch.testing.assert_close(normed.float(), normed2.float(), rtol=2e-3, atol=2e-3)
    err = (y.float() - y2.float()).norm() / y2.float().norm()
    assert err < 4e-3, err


@gpu
def test_in_a_cuda_graph_with_pdl():
    """A layer's two norms as decode runs them (the first one's h is the second's residual; the
    second returns its normed row), captured in a graph and launched with PDL: the replay
    equals the eager calls, through the registered op with the kernel turned on."""
    launch = {"cuda": {"enabled": True, "rms": True}}
    a1, w1 = _inputs(CASES[3], "cuda")  # K 1024 -> N 136
    c2 = _case(torch.bfloat16, 1024, 256, 128, "awq", True, True, True)
    a2, w2 = _inputs(c2, "cuda")
    x, res, g1 = a1["x"].clone(), a2["residual"].clone(), a1["norm_weight"]
    assert gemv_int4_cuda.plan_rms(x, g1, w1, res, launch["cuda"]) is not None

    def step():
        y, h = cuda_int4.int4_rms(x, g1, w1, "gptq", 32, residual=res, launch=launch)
        y2, h2, normed = cuda_int4.int4_rms(
            h,
            a2["norm_weight"],
            w2,
            "awq",
            128,
            bias=a2["bias"],
            residual=x,
            return_normed=True,
            launch=launch,
        )
        return torch.cat(
            [
                y.float().flatten(),
                y2.float().flatten(),
                h2.float().flatten(),
                normed.float().flatten(),
            ]
        )

    kc.assert_graph_replays(step, x)


def test_which_calls_it_takes():
    """plan_rms(): plan()'s rules at one row, and the norm's weight [K] and the residual [1, K]
    in x's dtype, contiguous and aligned; the table's switch and its largest N."""
    args, w = _inputs(CASES[2], kc.DEVICE)
    x, gw, res = args["x"], args["norm_weight"], args["residual"]
    on = {"enabled": True, "rms": True}
    if not RUNS:
        assert gemv_int4_cuda.plan_rms(x, gw, w, res, on) is None
        return
    assert gemv_int4_cuda.plan_rms(x, gw, w, res, on) is not None
    assert gemv_int4_cuda.plan_rms(x, gw, w, None, on) is not None
    assert gemv_int4_cuda.plan_rms(x, gw, w, res, {**on, "rms": False}) is None
    assert gemv_int4_cuda.plan_rms(x, gw, w, res, {**on, "rms_max_n": w.n}) is not None
    assert gemv_int4_cuda.plan_rms(x, gw, w, res, {**on, "rms_max_n": w.n - 4}) is None
    assert gemv_int4_cuda.plan_rms(x, gw.float(), w, res, on) is None
    assert gemv_int4_cuda.plan_rms(x, gw[:100], w, res, on) is None
    assert gemv_int4_cuda.plan_rms(x, gw, w, res.half(), on) is None
    two = x.expand(2, -1).contiguous()
    assert gemv_int4_cuda.plan_rms(two, gw, w, two, on) is None  # one row only


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("fp16,early,pairs", ((0, 0, 1), (1, 0, 0), (0, 1, 1)))
@pytest.mark.parametrize("warps", (2, 16))
def test_source_compiles_for_hopper_without_spills(tmp_path, fp16, early, pairs, warps):
    defines = [f"-DFP16={fp16}", "-DSTEPS=4", f"-DWARPS={warps}", "-DSTAGES=0", "-DNORM=1"]
    defines += [f"-DEARLY={early}", "-DBUFFERS=2", f"-DPAIRS={pairs}"]
    spills = cs.spills(gemv_int4_cuda.SOURCE, defines, tmp_path)
    assert spills and max(spills) == 0, spills
    before, after = cs.entry_ptx(gemv_int4_cuda.SOURCE, "gemv_int4_rms", defines)
    assert not re.search(r"\b(st|atom|red)\.global", before)  # nothing written before the wait
    # EARLY: the first two chunks' weights (4 words, and 1 vector of scale pairs or 2 of float32
    # scales each) before the wait
    assert len(re.findall(r"ld\.global", before)) == ((10 if pairs else 12) if early else 0)
    assert after.index("griddepcontrol.launch_dependents") > after.rindex("mma.sync")
