"""moe.route's Triton kernel (sglang_triton.moe_route; softmax top-k in one launch) against the
spec's float64 reference: every spec case through the conformance runner (the sigmoid, grouped
and biased routers take the vectorised torch route), decode shapes the case list lacks (Qwen3's
128 experts top-8, 512 experts top-16, Mixtral, gpt-oss, k=1, renormalize off, a scaling
factor), ties (lowest expert id first, checked against a stable sort), rows of -inf, strided
logits; in Triton's interpreter where there is no GPU. Plus the kernel compiled for sm_90."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang.ops import get_spec
from sglang.ops.moe import compare_routes
from sglang.ops.moe import route as reference_route
from sglang.ops.moe_route_vectorized import route as vectorized_route
from sglang.ops.spec import Case
from sglang_triton import moe_route


@pytest.mark.parametrize("case", kc.params("moe.route"))
def test_spec_cases(case):
    kc.check("moe.route", moe_route.route, case)


def distinct_logits(tokens: int, experts: int, dtype, seed: int) -> torch.Tensor:
    """Rows of distinct multiples of 1/32 (integers below 512 over 32: exact in bfloat16), so
    neighbouring logits differ by at least 1/32 and every precision chooses the same experts."""
    gen = torch.Generator().manual_seed(seed)
    ranks = torch.stack([torch.randperm(experts, generator=gen) for _ in range(tokens)])
    return ((ranks.reshape(tokens, experts) - experts // 2) / 32).to(dtype)


def check_against_reference(logits: torch.Tensor, **args) -> None:
    got = moe_route.route(logits.to(kc.DEVICE), **args)
    ref = reference_route(logits.to(torch.float64), **args)
    case = Case("moe.route", "extra", logits.dtype)
    ok, err, why = compare_routes(
        case, list(ref), [t.cpu() for t in got], get_spec("moe.route").tolerance(logits.dtype)
    )
    assert ok, why
    # the k slots in descending weight order, as the vectorised route leaves them
    w = got[0].cpu()
    assert bool((w[:, :-1] >= w[:, 1:]).all())


DECODE = [
    # (tokens, experts, top_k, renormalize, scaling, dtype)
    (1, 128, 8, True, 1.0, torch.bfloat16),  # Qwen3-30B-A3B, batch 1
    (7, 128, 8, True, 1.0, torch.float32),
    (3, 512, 16, True, 1.0, torch.bfloat16),
    (5, 8, 2, True, 1.0, torch.bfloat16),  # Mixtral
    (4, 32, 4, True, 1.0, torch.float32),  # gpt-oss-20b
    (6, 60, 4, False, 1.0, torch.float16),  # Qwen2-MoE: no renormalisation
    (5, 64, 6, False, 2.5, torch.float32),
    (3, 128, 1, False, 1.0, torch.bfloat16),
    (2, 128, 1, True, 1.0, torch.float32),
    (2, 1000, 8, True, 1.0, torch.float32),  # a row wider than 512: four warps
]


@pytest.mark.parametrize(
    "tokens,experts,top_k,renormalize,scaling,dtype",
    DECODE,
    ids=[f"T{t}-E{e}-k{k}-{'renorm' if r else 'lse'}-s{s}-{d}" for t, e, k, r, s, d in DECODE],
)
def test_decode_shapes(tokens, experts, top_k, renormalize, scaling, dtype):
    logits = distinct_logits(tokens, experts, dtype, seed=experts * 31 + top_k)
    check_against_reference(
        logits, top_k=top_k, renormalize=renormalize, routed_scaling_factor=scaling
    )


def stable_top(logits: torch.Tensor, k: int, renormalize: bool):
    """The top k by a stable descending sort (equal logits: the lower expert id first) and
    their weights in float64."""
    x = logits.to(torch.float64)
    ids = x.sort(dim=-1, descending=True, stable=True).indices[:, :k]
    top = x.gather(1, ids)
    if renormalize:
        w = top.softmax(-1)
    else:
        w = (top - x.logsumexp(-1, keepdim=True)).exp()
    return w, ids


@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_ties_go_to_the_lower_expert(renormalize, dtype):
    gen = torch.Generator().manual_seed(7)
    logits = torch.randint(0, 4, (6, 128), generator=gen).to(dtype) / 4  # ~32 ties per value
    logits[0] = 0.0
    logits[1, ::2] = -0.0  # -0 ties with +0
    w, ids = moe_route.route(logits.to(kc.DEVICE), 8, renormalize=renormalize)
    ref_w, ref_ids = stable_top(logits, 8, renormalize)
    assert ids.cpu().tolist() == ref_ids.tolist()
    torch.testing.assert_close(w.cpu().to(torch.float64), ref_w, atol=1e-6, rtol=1e-5)


def test_minus_infinity_rows_still_take_k_distinct_experts():
    logits = torch.full((3, 24), float("-inf"))
    logits[1, 5] = 1.0
    logits[1, 17] = 0.5
    logits[2] = torch.arange(24.0)
    logits[2, 20:] = float("-inf")
    w, ids = moe_route.route(logits.to(kc.DEVICE), 4)
    w, ids = w.cpu(), ids.cpu()
    assert ids[0].tolist() == [0, 1, 2, 3]  # all -inf: the lowest ids, as a stable sort
    assert ids[1].tolist() == [5, 17, 0, 1]
    assert ids[2].tolist() == [19, 18, 17, 16]
    ref_w, _ = stable_top(logits[1:], 4, True)
    torch.testing.assert_close(w[1:].to(torch.float64), ref_w, atol=1e-6, rtol=1e-5)


def test_strided_logits():
    wide = distinct_logits(5, 96, torch.bfloat16, seed=3)
    check_against_reference(wide[:, :64], top_k=6, renormalize=True)  # row stride 96
    check_against_reference(wide.T.contiguous().T[:, :64], top_k=6, renormalize=False)


def test_no_tokens():
    w, ids = moe_route.route(torch.zeros(0, 128, device=kc.DEVICE), 8)
    assert w.shape == (0, 8) and w.dtype == torch.float32
    assert ids.shape == (0, 8) and ids.dtype == torch.int32


FALLBACK = [
    dict(top_k=3, scoring_func="sigmoid"),
    dict(top_k=4, num_expert_group=4, topk_group=2),
    dict(top_k=4, correction_bias=torch.linspace(-0.1, 0.1, 64)),
    dict(top_k=40),
]


@pytest.mark.parametrize("args", FALLBACK, ids=["sigmoid", "groups", "bias", "k40"])
def test_other_routings_take_the_vectorised_route(args):
    logits = distinct_logits(3, 64, torch.float32, seed=11).to(kc.DEVICE)
    assert not moe_route.fused(
        args["top_k"],
        args.get("scoring_func", "softmax"),
        args.get("num_expert_group"),
        args.get("correction_bias"),
        64,
    )
    args = {k: v.to(kc.DEVICE) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    got, want = moe_route.route(logits, **args), vectorized_route(logits, **args)
    assert all(torch.equal(g, w) for g, w in zip(got, want))


COMPILE = """
import json, os, subprocess, tempfile
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from sglang_triton import moe_route

CUOBJDUMP = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/cuobjdump")
out = []
for dt, e, k, ren, warps in (("*bf16", 128, 8, True, 1), ("*fp32", 8, 2, False, 1),
                             ("*bf16", 512, 16, True, 1), ("*fp16", 1024, 4, False, 4)):
    sig = dict(logits_ptr=dt, weights_ptr="*fp32", ids_ptr="*i32", E="i32", stride_l="i32",
               scale="fp32", TOPK="constexpr", RENORMALIZE="constexpr", BLOCK_E="constexpr",
               BLOCK_K="constexpr", PDL="constexpr")
    consts = dict(TOPK=k, RENORMALIZE=ren, BLOCK_E=e, BLOCK_K=triton.next_power_of_2(k), PDL=True)
    kernel = triton.compile(ASTSource(fn=moe_route._route_kernel, signature=sig,
                                      constexprs=consts),
                            target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(kernel.asm["cubin"])
    use = subprocess.run([CUOBJDUMP, "--dump-resource-usage", f.name], capture_output=True,
                         text=True).stdout
    line = next(x for x in use.splitlines() if "REG:" in x)
    fields = dict(kv.split(":", 1) for kv in line.split() if ":" in kv)
    out.append({"experts": e, "top_k": k, "stack": int(fields["STACK"])})
print(json.dumps(out))
"""


def test_route_kernel_compiles_for_sm90_without_spills():
    from test_decode_kernels_compile import _compile

    kernels = _compile(COMPILE)
    assert len(kernels) == 4
    assert not [k for k in kernels if k["stack"] > 0], kernels
