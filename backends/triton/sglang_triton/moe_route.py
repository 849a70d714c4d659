"""moe.route on GPUs: softmax top-k routing in one Triton launch (Qwen2/3-MoE, Mixtral,
gpt-oss, DeepSeek-V2-Lite); the other routings (sigmoid scores, expert groups, a correction
bias: DeepSeek-V2/V3, Kimi) go to the core's vectorised torch route.

One program per token row loads the row's E logits once as float32 and takes the top k in k
passes of one reduction each: every logit becomes an int64 key, its float32 bits mapped to an
order-preserving int32 (negative floats have their magnitude bits flipped, -0 counts as +0) in
the high half and (BLOCK_E - 1 - expert) in the low half, so one max gives both the best value
and, among equal values, the lowest expert id (torch.topk's order; NaN ranks above +inf as it
does there). The chosen key is then masked to the int64 minimum, below every real logit's key
(-inf included), so a row of -inf logits still yields k distinct experts. Softmax is monotonic,
so choosing on the logits chooses on the scores; the weights are then the softmax over the k
chosen logits (renormalize) or exp(logit - logsumexp(row)) (not), times routed_scaling_factor,
as sglang.ops.moe_route_vectorized computes them: weights [T, k] float32, ids [T, k] int32,
the k slots in descending weight order. No host sync: Python branches only on shapes, dtypes
and arguments, so decode steps capture in CUDA graphs.

This replaced 6-7 torch kernels per MoE layer (gatherTopK, bitonic sort, softmax, reductions
and element-wise ops; about 17.5 us of a batch-1 Qwen3-30B-A3B decode layer on an H200).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from sglang.ops.moe_route_vectorized import route as vectorized_route

from sglang_triton import pdl
from sglang_triton.common import next_pow2
from sglang_triton.target import warps

MAX_EXPERTS = 1024  # one register row per program up to this many experts
MAX_TOP_K = 32  # the k passes are unrolled
LOWEST = tl.constexpr(-(2**63))  # below every logit's key


@triton.jit
def _route_kernel(
    logits_ptr,
    weights_ptr,
    ids_ptr,
    E,
    stride_l,
    scale,
    TOPK: tl.constexpr,
    RENORMALIZE: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PDL: tl.constexpr,
):
    pdl.enter(PDL)
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_E)
    valid = cols < E
    x = tl.load(logits_ptr + row * stride_l + cols, mask=valid, other=float("-inf"))
    x = x.to(tl.float32)
    bits = x.to(tl.int32, bitcast=True)
    order = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    order = tl.where(x == 0.0, 0, order)  # -0 ties with +0, as in torch.topk
    key = (order.to(tl.int64) << 32) | (BLOCK_E - 1 - cols).to(tl.int64)
    key = tl.where(valid, key, LOWEST)
    slots = tl.arange(0, BLOCK_K)
    vals = tl.full((BLOCK_K,), float("-inf"), tl.float32)
    ids = tl.zeros((BLOCK_K,), dtype=tl.int32)
    for j in tl.static_range(TOPK):
        best = tl.max(key, axis=0)
        expert = (BLOCK_E - 1) - best.to(tl.int32)  # the low half (the int64 truncated)
        hi = (best >> 32).to(tl.int32)
        val = tl.where(hi < 0, hi ^ 0x7FFFFFFF, hi).to(tl.float32, bitcast=True)
        vals = tl.where(slots == j, val, vals)
        ids = tl.where(slots == j, expert, ids)
        key = tl.where(cols == expert, LOWEST, key)
    top = tl.max(vals, axis=0)  # the first pass's value (the row's largest logit)
    if RENORMALIZE:
        e = tl.where(slots < TOPK, tl.exp(vals - top), 0.0)
        w = e / tl.sum(e, axis=0)
    else:
        total = tl.sum(tl.where(valid, tl.exp(x - top), 0.0), axis=0)
        w = tl.exp(vals - (top + tl.log(total)))
    out = row * TOPK + slots
    tl.store(weights_ptr + out, w * scale, mask=slots < TOPK)
    tl.store(ids_ptr + out, ids, mask=slots < TOPK)


def fused(top_k, scoring_func, num_expert_group, correction_bias, experts: int) -> bool:
    """Whether the Triton kernel serves this routing (else the vectorised torch route)."""
    grouped = num_expert_group is not None and num_expert_group > 1
    return (
        scoring_func == "softmax"
        and correction_bias is None
        and not grouped
        and 0 < top_k <= min(experts, MAX_TOP_K)
        and experts <= MAX_EXPERTS
    )


def route(
    router_logits,
    top_k,
    scoring_func="softmax",
    renormalize=True,
    num_expert_group=None,
    topk_group=None,
    correction_bias=None,
    routed_scaling_factor=1.0,
    launch=None,
):
    """The spec's moe.route (sglang.ops.moe.route): router_logits [T, E] -> (topk_weights
    [T, k] float32, topk_ids [T, k] int32)."""
    experts = router_logits.shape[-1]
    if router_logits.dim() != 2 or not fused(
        top_k, scoring_func, num_expert_group, correction_bias, experts
    ):
        return vectorized_route(
            router_logits,
            top_k,
            scoring_func=scoring_func,
            renormalize=renormalize,
            num_expert_group=num_expert_group,
            topk_group=topk_group,
            correction_bias=correction_bias,
            routed_scaling_factor=routed_scaling_factor,
        )
    logits = router_logits if router_logits.stride(-1) == 1 else router_logits.contiguous()
    tokens = logits.shape[0]
    device = logits.device
    weights = torch.empty((tokens, top_k), dtype=torch.float32, device=device)
    ids = torch.empty((tokens, top_k), dtype=torch.int32, device=device)
    if tokens == 0:
        return weights, ids
    block_e = next_pow2(experts)
    _route_kernel[(tokens,)](
        logits,
        weights,
        ids,
        experts,
        logits.stride(0),
        float(routed_scaling_factor),
        TOPK=top_k,
        RENORMALIZE=bool(renormalize),
        BLOCK_E=block_e,
        BLOCK_K=next_pow2(top_k),
        num_warps=warps(1 if block_e <= 512 else 4, launch),
        **pdl.args(device),
    )
    return weights, ids
