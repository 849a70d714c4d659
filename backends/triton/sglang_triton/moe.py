"""moe.route and moe.experts on GPUs.

route: one Triton launch for softmax top-k routing (moe_route.py); sigmoid, grouped and biased
routings through the core's vectorised torch route (sglang.ops.moe_route_vectorized).

experts: a fused MoE over tokens sorted by expert, as SGLang's / vLLM's fused_moe does:

  1. align: the T*k (token, slot) pairs are sorted by expert id; each expert's run is padded
     to a multiple of BLOCK_M, so every BLOCK_M block of `sorted_pairs` belongs to one expert
     (`block_expert`). Padding entries hold the pair count n (masked off in the kernels);
     blocks past the padded total, and slots with id -1, belong to no expert. Sizes are static
     upper bounds (n + min(E, n) * (BLOCK_M - 1)), so nothing waits on the GPU:

        pairs by expert:  e0 e0 e0 | e2 | e5 e5           (BLOCK_M = 4)
        sorted_pairs:     p p p n  | p n n n | p p n n | n ...   block_expert: 0 2 5 E ...

  2. gate/up kernel: per (block, tile of I columns), the block's token rows of x times the
     gate and up tiles of w13[e] (two accumulators), plus the expert's w13_bias where given,
     act(gate) * up written to h[pair, I] in x.dtype: the activation fused into the first
     GEMM, no [n, 2I] intermediate.
  3. down kernel: per (block, tile of D columns), h rows times w2[e], plus the expert's w2_bias
     where given, scaled by the pair's routing weight, written in float32 to y[pair, D] (pairs
     no block covers stay zero).
  4. out[t] = sum over the k slots of y[t*k + j], rounded once to x.dtype.

Up to moe_decode.MAX_PAIRS (token, slot) pairs (decode) the two GEMV kernels of moe_decode.py
serve instead: no alignment, one program per (pair, column block) reading that expert's rows.

Activations: silu, erf gelu and gpt-oss's clamped "swigluoai" (activation.act_mul), each with
or without expert biases (gpt-oss has both): the backend declares moe:swigluoai and moe:bias.

FP8 block-scaled experts (moe:fp8_block: w13 / w2 e4m3, w13_scale / w2_scale per block of
block_size): the kernels load the e4m3 tiles and dequantize in registers; the aligned-block
kernels' tiles are no larger than the blocks, so each [BLOCK_K, BLOCK_N] tile has one scale,
applied before the MMA (the tile in x.dtype, as the checkpoint's experts dequantized). MXFP4
experts (moe:mxfp4: uint8 codes [E, N, K/2], e8m0 scales per 32 along K) are decoded tile by
tile (moe_decode.packed_tile), exactly representable in 16 bits; int4 experts (moe:int4: the
same codes' bytes, float scales and zeros per group of G along K) the same way, as
(code - zero) * scale rounded to x.dtype for the MMA.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from sglang.ops.moe import experts as reference_experts

from sglang_triton import moe_decode, moe_route
from sglang_triton.activation import ACTIVATIONS, act_mul
from sglang_triton.common import mma, scaled_tile
from sglang_triton.moe_decode import packed_tile
from sglang_triton.target import merged, warps

# --- moe.experts -----------------------------------------------------------------------------

USE_DECODE = True
"""Few-pair calls through moe_decode (off: the aligned-block kernels for every size)."""


def align(topk_ids: torch.Tensor, num_experts: int, block_m: int):
    """-> (sorted_pairs [P] int32, block_expert [P / block_m] int32) (see the module
    docstring); ids outside [0, E) (the -1 of padded slots) are dropped."""
    device = topk_ids.device
    flat = topk_ids.reshape(-1).to(torch.int64)
    n = flat.numel()
    capacity = triton.cdiv(n + min(num_experts, n) * (block_m - 1), block_m) * block_m
    expert = torch.where((flat >= 0) & (flat < num_experts), flat, num_experts)
    counts = torch.zeros(num_experts + 1, dtype=torch.int64, device=device)
    counts.scatter_add_(0, expert, torch.ones_like(expert))
    padded = (counts[:num_experts] + block_m - 1) // block_m * block_m
    padded_end = padded.cumsum(0)
    first_of = counts.cumsum(0) - counts  # where each expert's run starts among sorted pairs
    order = expert.argsort(stable=True)
    sorted_expert = expert[order]
    rank = torch.arange(n, device=device) - first_of[sorted_expert]
    known = sorted_expert < num_experts
    start = (padded_end - padded)[sorted_expert.clamp(max=num_experts - 1)]
    dest = torch.where(known, start + rank, capacity)  # dropped pairs land past the end
    sorted_pairs = torch.full((capacity + 1,), n, dtype=torch.int32, device=device)
    sorted_pairs[dest] = order.to(torch.int32)
    block_start = torch.arange(0, capacity, block_m, device=device)
    block_expert = torch.searchsorted(padded_end, block_start, right=True).to(torch.int32)
    return sorted_pairs[:capacity], block_expert


@triton.jit
def _gate_up_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    h_ptr,
    pairs_ptr,
    experts_ptr,
    n_pairs,
    inter,
    K,
    E,
    stride_xm,
    stride_we,
    stride_wn,
    stride_wk,
    stride_be,
    stride_hm,
    S,
    stride_se,
    stride_sn,
    stride_sk,
    Z,
    up_row,
    TOPK: tl.constexpr,
    ACT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    FP8: tl.constexpr = False,
    BN_Q: tl.constexpr = 1,
    BK_Q: tl.constexpr = 1,
    MXFP4: tl.constexpr = False,
    INT4: tl.constexpr = False,
    GROUP: tl.constexpr = 1,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    e = tl.load(experts_ptr + pid_m).to(tl.int64)
    if e >= E:
        return
    pair = tl.load(pairs_ptr + pid_m * BLOCK_M + tl.arange(0, BLOCK_M))
    pmask = pair < n_pairs
    token = (pair // TOPK).to(tl.int64)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = cols < inter
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = x_ptr + token[:, None] * stride_xm + ks[None, :]
    g_ptrs = w_ptr + e * stride_we + cols[None, :] * stride_wn + ks[:, None] * stride_wk
    u_ptrs = g_ptrs + inter * stride_wn
    # FP8 blocks: a [BLOCK_K, BLOCK_N] tile lies in one block (blocks of powers of two, tiles
    # no larger: fp8_args), so one scale a tile, applied before the MMA.
    s_gate = S + e * stride_se + (pid_n * BLOCK_N // BN_Q) * stride_sn
    s_up = s_gate + up_row * stride_sn
    acc_g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_u = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kmask = (k0 + ks) < K
        a = tl.load(a_ptrs, mask=pmask[:, None] & kmask[None, :], other=0.0)
        if MXFP4 or INT4:  # byte, scale and zero columns by input position (packed_tile)
            w_ok = kmask[:, None] & nmask[None, :]
            column = cols[None, :].to(tl.int64)
            g_bytes = w_ptr + e * stride_we + column * stride_wn
            g_scales = e * stride_se + column * stride_sn
            up = inter * stride_sn
            kk = (k0 + ks)[:, None]
            g = packed_tile(g_bytes, S + g_scales, Z + g_scales, kk, w_ok, stride_sk, INT4, GROUP)
            u = packed_tile(
                g_bytes + inter * stride_wn, S + g_scales + up, Z + g_scales + up, kk, w_ok,
                stride_sk, INT4, GROUP,
            )  # fmt: skip
            # MMA operands in x.dtype (MXFP4: e2m1 times a power of two, exact; int4 rounded)
            g, u = scaled_tile(g, 1.0, a.dtype), scaled_tile(u, 1.0, a.dtype)
        else:
            g = tl.load(g_ptrs, mask=kmask[:, None] & nmask[None, :], other=0.0)
            u = tl.load(u_ptrs, mask=kmask[:, None] & nmask[None, :], other=0.0)
        if FP8:
            k_block = (k0 // BK_Q) * stride_sk
            g = scaled_tile(g, tl.load(s_gate + k_block), a.dtype)
            u = scaled_tile(u, tl.load(s_up + k_block), a.dtype)
        acc_g = mma(acc_g, a, g, IEEE)
        acc_u = mma(acc_u, a, u, IEEE)
        a_ptrs += BLOCK_K
        g_ptrs += BLOCK_K * stride_wk
        u_ptrs += BLOCK_K * stride_wk
    if HAS_BIAS:  # w13_bias[e]: gate columns, then up columns
        b_row = b_ptr + e * stride_be + cols
        acc_g += tl.load(b_row, mask=nmask, other=0.0).to(tl.float32)[None, :]
        acc_u += tl.load(b_row + inter, mask=nmask, other=0.0).to(tl.float32)[None, :]
    h = act_mul(acc_g, acc_u, ACT)
    h_ptrs = h_ptr + pair.to(tl.int64)[:, None] * stride_hm + cols[None, :]
    tl.store(h_ptrs, h.to(h_ptr.dtype.element_ty), mask=pmask[:, None] & nmask[None, :])


@triton.jit
def _down_kernel(
    h_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    pairs_ptr,
    experts_ptr,
    weights_ptr,
    n_pairs,
    N,
    K,
    E,
    stride_hm,
    stride_we,
    stride_wn,
    stride_wk,
    stride_be,
    stride_ym,
    S,
    stride_se,
    stride_sn,
    stride_sk,
    Z,
    HAS_BIAS: tl.constexpr,
    IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    FP8: tl.constexpr = False,
    BN_Q: tl.constexpr = 1,
    BK_Q: tl.constexpr = 1,
    MXFP4: tl.constexpr = False,
    INT4: tl.constexpr = False,
    GROUP: tl.constexpr = 1,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    e = tl.load(experts_ptr + pid_m).to(tl.int64)
    if e >= E:
        return
    pair = tl.load(pairs_ptr + pid_m * BLOCK_M + tl.arange(0, BLOCK_M))
    pmask = pair < n_pairs
    rows = pair.to(tl.int64)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = cols < N
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = h_ptr + rows[:, None] * stride_hm + ks[None, :]
    b_ptrs = w_ptr + e * stride_we + cols[None, :] * stride_wn + ks[:, None] * stride_wk
    s_row = S + e * stride_se + (pid_n * BLOCK_N // BN_Q) * stride_sn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kmask = (k0 + ks) < K
        a = tl.load(a_ptrs, mask=pmask[:, None] & kmask[None, :], other=0.0)
        if MXFP4 or INT4:
            column = cols[None, :].to(tl.int64)
            scale_cols = e * stride_se + column * stride_sn
            b = packed_tile(
                w_ptr + e * stride_we + column * stride_wn,
                S + scale_cols,
                Z + scale_cols,
                (k0 + ks)[:, None],
                kmask[:, None] & nmask[None, :],
                stride_sk,
                INT4,
                GROUP,
            )
            b = scaled_tile(b, 1.0, a.dtype)
        else:
            b = tl.load(b_ptrs, mask=kmask[:, None] & nmask[None, :], other=0.0)
        if FP8:  # one scale a tile (see the gate/up kernel)
            b = scaled_tile(b, tl.load(s_row + (k0 // BK_Q) * stride_sk), a.dtype)
        acc = mma(acc, a, b, IEEE)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K * stride_wk
    if HAS_BIAS:  # w2_bias[e], before the routing weight
        acc += tl.load(b_ptr + e * stride_be + cols, mask=nmask, other=0.0).to(tl.float32)[None, :]
    weight = tl.load(weights_ptr + rows, mask=pmask, other=0.0)
    acc = acc * weight[:, None]
    y_ptrs = y_ptr + rows[:, None] * stride_ym + cols[None, :]
    tl.store(y_ptrs, acc, mask=pmask[:, None] & nmask[None, :])


def bias_args(bias, x):
    """An expert bias [E, N] as the kernels take it (rows of unit stride), or x as a placeholder
    they never read (HAS_BIAS off)."""
    if bias is None:
        return x
    return bias if bias.stride(-1) == 1 else bias.contiguous()


def _config(n_pairs: int, num_experts: int) -> dict:
    """Tile sizes by the mean number of pairs per expert: small blocks for decode (a few
    tokens per expert), larger ones for prefill."""
    per_expert = n_pairs / max(num_experts, 1)
    if per_expert <= 16:
        return {"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 64}
    if per_expert <= 64:
        return {"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 64}
    return {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}


def experts(
    x,
    w13,
    w2,
    topk_weights,
    topk_ids,
    activation="silu",
    w13_bias=None,
    w2_bias=None,
    w13_scale=None,
    w2_scale=None,
    block_size=(128, 128),
    w13_zeros=None,
    w2_zeros=None,
    launch=None,
    w13_perm=None,
):
    """The spec's moe.experts; FP8 block-scaled (moe:fp8_block), MXFP4 (moe:mxfp4) and int4
    (moe:int4) experts (w13_scale / w2_scale, int4's zeros) dequantize each weight tile in
    registers; act-order experts (moe:act_order, w13_perm) read each pair's x in its expert's
    input order (moe_decode.permuted_pairs: the gate/up kernel then sees a token a pair)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    quant = moe_decode.quant_args(w13, w13_scale, w2_scale, block_size, w13_zeros, w2_zeros)
    if quant is False:  # not blocks a kernel takes: the spec's own computation (correct, slow)
        return reference_experts(
            x, w13, w2, topk_weights, topk_ids, activation, w13_bias, w2_bias,
            w13_scale, w2_scale, block_size, w13_zeros, w2_zeros, w13_perm,
        )  # fmt: skip
    tokens, hidden = x.shape
    num_experts, inter = w2.shape[0], w2.shape[-1] * (2 if w2.dtype == torch.uint8 else 1)
    top_k = topk_ids.shape[-1]
    n = tokens * top_k
    if n == 0:
        return torch.zeros_like(x)
    if USE_DECODE and n <= moe_decode.MAX_PAIRS:
        decode = launch and {"warp_size": launch.get("warp_size", 32), **launch.get("decode", {})}
        return moe_decode.experts_decode(
            x,
            w13,
            w2,
            topk_weights,
            topk_ids,
            activation,
            w13_bias=w13_bias,
            w2_bias=w2_bias,
            w13_scale=w13_scale,
            w2_scale=w2_scale,
            block_size=block_size,
            w13_zeros=w13_zeros,
            w2_zeros=w2_zeros,
            launch=decode or None,
            w13_perm=w13_perm,
        )
    x = x if x.stride(-1) == 1 else x.contiguous()
    w13 = w13 if w13.stride(-1) == 1 else w13.contiguous()
    w2 = w2 if w2.stride(-1) == 1 else w2.contiguous()
    b13, b2 = bias_args(w13_bias, x), bias_args(w2_bias, x)
    cfg = merged(_config(n, num_experts), launch and launch.get("tiles"))
    consts, s13, s2, up_row = {}, (x, 0, 0, 0), (x, 0, 0, 0), 0  # x: a placeholder never read
    z13 = z2 = x
    groups = (1, 1)
    if quant:
        consts, up_row, groups = quant["consts"], quant["up_row"], quant["groups"]
        s13, s2 = ((s, *s.stride()) for s in quant["scales"])
        z13, z2 = quant["zeros"] or (x, x)
        if "FP8" in consts:  # tiles no larger than the blocks
            cfg["BLOCK_N"] = min(cfg["BLOCK_N"], consts["BN_Q"])
            cfg["BLOCK_K"] = min(cfg["BLOCK_K"], consts["BK_Q"])
    run = {"num_warps": warps(4, launch)}
    if launch and "num_stages" in launch:
        run["num_stages"] = launch["num_stages"]
    bm, bn = cfg["BLOCK_M"], cfg["BLOCK_N"]
    sorted_pairs, block_expert = align(topk_ids, num_experts, bm)
    blocks = block_expert.numel()
    ieee = x.dtype == torch.float32
    h = torch.empty((n, inter), dtype=x.dtype, device=x.device)
    xg, gate_topk = (x, top_k)
    if w13_perm is not None:
        xg, gate_topk = moe_decode.permuted_pairs(x, topk_ids, w13_perm), 1
    _gate_up_kernel[(blocks, triton.cdiv(inter, bn))](
        xg,
        w13,
        b13,
        h,
        sorted_pairs,
        block_expert,
        n,
        inter,
        hidden,
        num_experts,
        xg.stride(0),
        w13.stride(0),
        w13.stride(1),
        w13.stride(2),
        b13.stride(0),
        h.stride(0),
        *s13,
        z13,
        up_row,
        TOPK=gate_topk,
        ACT=ACTIVATIONS[activation],
        HAS_BIAS=w13_bias is not None,
        IEEE=ieee,
        GROUP=groups[0],
        **cfg,
        **consts,
        **run,
    )
    y = torch.zeros((n, hidden), dtype=torch.float32, device=x.device)
    weights = topk_weights.reshape(-1).float()
    _down_kernel[(blocks, triton.cdiv(hidden, bn))](
        h,
        w2,
        b2,
        y,
        sorted_pairs,
        block_expert,
        weights,
        n,
        hidden,
        inter,
        num_experts,
        h.stride(0),
        w2.stride(0),
        w2.stride(1),
        w2.stride(2),
        b2.stride(0),
        y.stride(0),
        *s2,
        z2,
        HAS_BIAS=w2_bias is not None,
        IEEE=ieee,
        GROUP=groups[1],
        **cfg,
        **consts,
        **run,
    )
    return y.view(tokens, top_k, hidden).sum(dim=1).to(x.dtype)


def register(registry, target) -> None:
    route = target.bind(moe_route.route, "moe.route")
    registry.register("moe.route", route, name=target.name("triton_moe_route"))
    fused = target.bind(experts, "moe")
    registry.register("moe.experts", fused, name=target.name("triton_fused_moe"))
