"""The cuda backend's CUDA C++ MoE decode GEMVs (sglang_cuda.kernels.moe_decode_cuda, compiled by
NVRTC) against the spec's reference through the conformance runner: 16-bit float experts with
silu, one token over many experts at top-8 (Qwen3-MoE-like), 64 pairs with padded slots, D and
I not multiples of a step or a block, several launch shapes, and in a CUDA graph with PDL
through the registered op. On a GPU only; without one, what can be checked is checked: which
calls they take, and (with nvcc) that the source compiles for sm_90a without spills and keeps
the PDL rule."""

from __future__ import annotations

import re

import cuda_source as cs
import kernel_checks as kc
import pytest
import torch
from sglang.ops import get_spec
from sglang.ops.spec import Case, case_name
from sglang_cuda import nvrtc
from sglang_cuda.kernels import moe as cuda_moe
from sglang_cuda.kernels import moe_decode_cuda

RUNS = kc.GPU and nvrtc.available() is None
gpu = pytest.mark.skipif(not RUNS, reason=f"needs a CUDA GPU and NVRTC ({nvrtc.available()})")


def _case(dt, t, d, i, e, k, pad):
    name = case_name(dt, f"T{t}", f"D{d}", f"I{i}", f"E{e}", f"k{k}", "silu", "pad" if pad else "")
    params = {"tokens": t, "hidden": d, "inter": i, "experts": e, "top_k": k}
    params.update(activation="silu", pad=pad, bias=False)
    return Case("moe.experts", name, dt, params)


CASES = [
    _case(torch.bfloat16, 1, 2048, 768, 128, 8, False),  # Qwen3-30B-A3B's shape, one token
    _case(torch.bfloat16, 1, 128, 48, 32, 8, False),
    _case(torch.bfloat16, 8, 64, 24, 16, 8, True),  # 64 pairs, padded slots
    _case(torch.float16, 2, 200, 40, 8, 2, False),  # D and I not multiples of 256 or a block
    _case(torch.bfloat16, 3, 1032, 264, 8, 4, True),  # steps with a ragged last one
]
IDS = [c.name for c in CASES]


def _cuda_only(launch=None):
    launch = {"enabled": True, **(launch or {})}

    def run(x, w13, w2, topk_weights, topk_ids, activation="silu", **extras):
        has = any(v is not None for v in extras.values())
        cfg = moe_decode_cuda.plan(x, w13, w2, topk_weights, topk_ids, activation, has, launch)
        assert cfg is not None, "the CUDA kernels did not take this call"
        return moe_decode_cuda.experts_decode(x, w13, w2, topk_weights, topk_ids, cfg)

    return run


@gpu
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_moe_decode_cuda(case):
    kc.check("moe.experts", _cuda_only(), case)


LAUNCHES = (
    {"cols": 1, "rows": 1, "warps": 1, "unroll": 1},
    {"cols": 8, "rows": 16, "warps": 8, "unroll": 2},
    {"cols": 2, "rows": 4, "warps": 2, "unroll": 3},
)


@gpu
@pytest.mark.parametrize(
    "launch", LAUNCHES, ids=lambda c: "c{cols}-r{rows}-w{warps}-u{unroll}".format(**c)
)
@pytest.mark.parametrize("case", CASES[1:], ids=IDS[1:])
def test_moe_decode_cuda_launches(case, launch):
    kc.check("moe.experts", _cuda_only(launch), case)


@gpu
def test_in_a_cuda_graph_with_pdl():
    """Two MoE layers in a row (the second reads the first's output) captured in a graph with
    PDL, through the registered op: the replay equals the eager calls, and the Triton kernels
    within bfloat16's rounding."""
    case = CASES[0]
    args = get_spec("moe.experts").make_inputs(case, torch.Generator().manual_seed(case.seed))
    args = {k: v.to("cuda") if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    x = args["x"].clone()
    on = {"cuda": {"enabled": True}}

    def layer(h, launch):
        return cuda_moe.experts(
            h, args["w13"], args["w2"], args["topk_weights"], args["topk_ids"], launch=launch
        )

    def step(launch=on):
        return layer((layer(x, launch) * 0.5).to(x.dtype), launch)

    torch.testing.assert_close(step().float(), step(None).float(), rtol=2e-2, atol=2e-2)
    kc.assert_graph_replays(step, x)


def test_which_calls_it_takes():
    """plan(): 16-bit float experts in x's dtype, silu, nothing extra, up to MAX_PAIRS pairs,
    D and I multiples of 8, the switch on; the rest goes to the Triton kernels (and so does
    everything where NVRTC or a GPU is missing)."""
    args = get_spec("moe.experts").make_inputs(CASES[1], torch.Generator().manual_seed(0))
    args = {k: v.to(kc.DEVICE) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    x, w13, w2, tw, ti = (args[k] for k in ("x", "w13", "w2", "topk_weights", "topk_ids"))
    on = {"enabled": True}
    if not RUNS:
        assert moe_decode_cuda.plan(x, w13, w2, tw, ti, "silu", False, on) is None
        return
    assert moe_decode_cuda.plan(x, w13, w2, tw, ti, "silu", False, on) is not None
    assert moe_decode_cuda.plan(x, w13, w2, tw, ti, "silu", False, {"enabled": False}) is None
    assert moe_decode_cuda.plan(x, w13, w2, tw, ti, "gelu", False, on) is None
    assert moe_decode_cuda.plan(x, w13, w2, tw, ti, "silu", True, on) is None  # biases, scales
    assert moe_decode_cuda.plan(x.float(), w13, w2, tw, ti, "silu", False, on) is None
    many = x.expand(9, -1).contiguous(), ti[:1].expand(9, -1).contiguous()
    assert moe_decode_cuda.plan(many[0], w13, w2, tw, many[1], "silu", False, on) is None


def test_warps_rule():
    """auto: about `unroll` units a warp, a power of two from 1 to 8."""
    auto = {"warps": "auto", "unroll": 1}
    assert moe_decode_cuda._warps(8, auto) == 8 and moe_decode_cuda._warps(3, auto) == 2
    assert moe_decode_cuda._warps(24, auto) == 8 and moe_decode_cuda._warps(1, auto) == 1
    assert moe_decode_cuda._warps(8, {"warps": "auto", "unroll": 2}) == 4
    assert moe_decode_cuda._warps(8, {"warps": 2, "unroll": 1}) == 2


@pytest.mark.skipif(cs.NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("fp16", (0, 1))
@pytest.mark.parametrize("rows,warps,unroll,topk", ((8, 8, 1, 8), (16, 8, 2, 8), (2, 1, 3, 2)))
def test_source_compiles_for_hopper_without_spills(tmp_path, fp16, rows, warps, unroll, topk):
    defines = [f"-DFP16={fp16}", f"-DROWS={rows}", f"-DWARPS={warps}", f"-DUNROLL={unroll}"]
    defines.append(f"-DTOPK={topk}")
    spills = cs.spills(moe_decode_cuda.SOURCE, defines, tmp_path)
    assert len(spills) == 2 and max(spills) == 0, spills
    for entry in ("moe_gate_up", "moe_down"):
        before, after = cs.entry_ptx(moe_decode_cuda.SOURCE, entry, defines)
        assert not re.search(cs.GLOBAL_ACCESS, before)  # the PDL rule: ids, x, h after the wait
        assert after.index("griddepcontrol.launch_dependents") > after.rindex("ld.global.nc.v4")
