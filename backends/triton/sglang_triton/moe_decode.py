"""moe.experts for a few (token, slot) pairs (decode): two GEMV kernels, no sorting.

At decode a MoE layer reads top_k experts' weights per token, each used by one or a few pairs,
so the aligned-block GEMM of moe.py (16-row tiles with one live row, a sort and ~15 small torch
kernels to align) spends most of its time on anything but reading weights. Here:

  1. gate/up: one program per (pair, block of BLOCK_N columns of I): e = topk_ids[pair]; the
     gate rows w13[e, cols] and up rows w13[e, I + cols] are streamed along D in [BLOCK_N,
     BLOCK_K] tiles and multiplied by x[token] in float32 registers, reduced once at the end;
     h[pair, cols] = act(gate + bg) * (up + bu) (bg, bu: the expert's w13_bias where given),
     kept in float32 (h is n x I floats: a few KiB). Program
     ids run the pairs of one column block next to each other, so pairs sharing an expert
     read its rows from L2. A slot whose id is -1 (or outside [0, E)) does nothing.
  2. down: one program per (token, block of BLOCK_N rows of D): for each of the token's top_k
     slots, the rows w2[e, rows] streamed along I times h[pair] * topk_weight, all slots into
     one float32 accumulator, reduced once, plus each live slot's topk_weight * w2_bias[e, rows]
     where given, written to out[token] in x.dtype: the sum over
     top_k is in the kernel (no atomics, no float32 [n, D] buffer, deterministic). With the
     launch key "split" the slots go to separate programs (top_k times the programs, for
     few tokens), each writing its float32 rows to a workspace; the last of a block's top_k
     programs to arrive adds them in slot order and stores the output (split_k.finish: the
     same deterministic sum, no torch reduction and copy after the kernel).

Two launches in all; nothing waits on the GPU. moe.experts takes this path for up to
MAX_PAIRS pairs (moe.py).

4-bit experts (MXFP4, int4): a row's bytes are read as they lie, BLOCK_K / 2 a step, and each
byte's two nibbles are dotted with x's even and odd elements (packed_rows_dot), a scale (and
zero) loaded once per row and group-sized sub-tile. The sm_90 PTX then loads the codes 4 bytes a
thread at a time (ld.global.b32) where packed_tile's gather by input position loaded each
weight's byte and scale separately (two ld.global.b8 and two b16 a weight pair); the gather
stays for group sizes the pairing cannot take (paired_sub). Not yet timed on a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sglang_triton import pdl, split_k
from sglang_triton.activation import ACTIVATIONS, act_mul
from sglang_triton.fp4_codes import e2m1, e2m1_tiny, e8m0
from sglang_triton.target import merged, warps

TWO_63 = tl.constexpr(9.223372036854775808e18)  # 2^63, exact in float32

MAX_PAIRS = 64
"""tokens x top_k up to which moe.experts takes these kernels."""

DECODE_LAUNCH = {
    "gate_up": {"block_n": 32, "block_k": 128, "num_warps": 8, "num_stages": 3},
    "down": {"block_n": 8, "block_k": 128, "num_warps": 2, "num_stages": 3, "split": True},
}
"""Launch parameters per kernel: the fastest gate/up (with the earlier down) and down (with the
earlier gate/up) of benchmarks/bench_decode_gemv.py --moe-sweep on an H200 for one token of
Qwen3-30B-A3B (128 experts, top-8), 2026-12-04: 26.4 us against 28.8 us for the earlier
(16, 256, 4 warps / 16, 256, 8 warps split) and 98.8 us for the aligned-block kernels.
block_k 512 spills registers on sm_90."""


def quant_args(
    w13, w13_scale, w2_scale, block_size, w13_zeros=None, w2_zeros=None
) -> dict | None | bool:
    """Quantized experts as the kernels here and in moe.py take them: None for float experts;
    MXFP4 (uint8 weights, e8m0 scales per 32 along K); int4 groups (uint8 codes with float
    scales and zeros per G along K); FP8 blocks whose sizes are powers of two of at least 16
    (DeepSeek-V3 and Qwen3 use 128), so that a kernel's tile, no larger than a block, lies in
    one block; False for other FP8 blocks. {"scales", "zeros" (int4's, else None), "consts"
    (the kernels' constexprs), "groups" (int4's G of w13 and of w2, the GROUP constexpr of the
    gate/up and of the down kernel), "rows" (the largest program height, FP8), "up_row" (the up
    half's first scale row)}."""
    if w13_scale is None and w2_scale is None:
        return None
    if w13_scale is None or w2_scale is None:
        raise ValueError("quantized experts need both w13_scale and w2_scale")
    scales = tuple(s if s.stride(-1) == 1 else s.contiguous() for s in (w13_scale, w2_scale))
    up_row = scales[0].shape[1] // 2
    args = {"scales": scales, "zeros": None, "groups": (1, 1), "rows": None, "up_row": up_row}
    if w13_zeros is not None or w2_zeros is not None:
        if w13_zeros is None or w2_zeros is None:
            raise ValueError("int4 experts need both w13_zeros and w2_zeros")
        # The zeros are read with the scales' strides.
        scales = tuple(s.contiguous() for s in scales)
        zeros = tuple(z.contiguous() for z in (w13_zeros, w2_zeros))
        hidden, inter = 2 * w13.shape[-1], w13.shape[1] // 2
        groups = (hidden // scales[0].shape[-1], inter // scales[1].shape[-1])
        args.update(scales=scales, zeros=zeros, groups=groups, consts={"INT4": True})
        return args
    if w13.dtype == torch.uint8:  # one e8m0 scale per 32 along K
        return {**args, "consts": {"MXFP4": True}, "groups": (32, 32)}
    bn, bk = (int(b) for b in block_size)
    if min(bn, bk) < 16 or bn & (bn - 1) or bk & (bk - 1):
        return False
    return {**args, "consts": {"FP8": True, "BN_Q": bn, "BK_Q": bk}, "rows": bn}


def permuted_pairs(x: torch.Tensor, topk_ids: torch.Tensor, w13_perm: torch.Tensor) -> torch.Tensor:
    """Act-order experts (moe:act_order): x [T, D] -> [T * k, D], each (token, slot) pair's
    row in its expert's input order (x[t, w13_perm[e]]), which the gate/up kernels then read
    as one token a pair (TOPK 1). Padded slots (-1) take expert 0's order; the kernels skip
    them. Torch gathers, no host sync (CUDA graphs capture them)."""
    k = topk_ids.shape[-1]
    ids = topk_ids.reshape(-1).long().clamp(0, w13_perm.shape[0] - 1)
    rows = x.repeat_interleave(k, dim=0)
    return rows.gather(1, w13_perm[ids].long())


PAIRED_NIBBLES = True
"""MXFP4 and int4 rows through packed_rows_dot (bytes read as they lie, nibbles paired with x's
even and odd elements) where the group size allows (`paired_sub`); off: packed_tile's gather
by input position for every 4-bit launch."""


def paired_sub(group: int, block_k: int) -> int:
    """packed_rows_dot's sub-tile for a group size and a launch's BLOCK_K: min(group, block_k)
    where it is a power of two (of at least 2) dividing both, else 0 (packed_tile serves)."""
    sub = min(group, block_k)
    if not PAIRED_NIBBLES or sub < 2 or sub & (sub - 1) or group % sub or block_k % sub:
        return 0
    return sub


PACKED_LAUNCH = {
    "gate_up": {"block_n": 8, "block_k": 512, "num_warps": 4},
    "down": {"block_k": 256},
}
"""DECODE_LAUNCH's overrides for 4-bit experts on packed_rows_dot (MXFP4, int4 in groups the
pairing takes). A step of BLOCK_K inputs reads BLOCK_K / 2 bytes a row, a quarter of the bf16
kernels' bytes a step at the same BLOCK_K. Tuned in the model's batch-1 decode graph
(benchmarks/sweep_decode_launch.py --preset gpt-oss / qwen3-gptq, an H100, 2026-12-05): with
DECODE_LAUNCH as it is, gpt-oss-20b's MXFP4 experts ran at ~0.4 TB/s (gate/up 86 us, down 50 us
a layer), a step 4.89 ms. With e2m1_tiny's decode and this launch the step
is 2.85 ms; gate/up in 8 rows of 512 inputs (4 warps) against 3.19 ms at DECODE_LAUNCH's 32 x 128
and 3.20 at 32 x 256; down's K steps of 256 against 2.97 at 512. Qwen3-30B-A3B-GPTQ-Int4's
step: 3.50 -> 3.25 ms (the same launch; 64 x 512 on 8 warps 3.21, within 1.2%)."""

GATHER_LAUNCH = {"gate_up": {"block_k": 64}, "down": {}}
"""DECODE_LAUNCH's overrides for 4-bit experts on packed_tile's gather (groups paired_sub
refuses): the gate/up GEMV's [32, 128] tiles of bytes, codes and scales of two matrices spill
registers on sm_90 (tests/cuda/test_decode_kernels_compile.py); not tuned on a GPU. The paired
path (packed_rows_dot) takes DECODE_LAUNCH as it is, without spills."""


@triton.jit
def packed_tile(
    w_rows, s_rows, z_rows, kk, mask, stride_sk, INT4: tl.constexpr, GROUP: tl.constexpr
):
    """Weights of two 4-bit codes a byte (the low nibble first) in float32, for weight rows
    `w_rows` (byte pointers [R, 1]), scale rows `s_rows` and zero rows `z_rows` (read with the
    scales' strides) at input positions kk [1, C]: MXFP4 (e2m1 codes x e8m0 scales, one per
    32 along K; z_rows unused) or, INT4, (code - zero) * scale of the group kk // GROUP."""
    byte = tl.load(w_rows + kk // 2, mask=mask, other=0).to(tl.int32)
    code = (byte >> ((kk % 2) * 4)) & 0xF
    if INT4:
        group = (kk // GROUP) * stride_sk
        scale = tl.load(s_rows + group, mask=mask, other=0.0).to(tl.float32)
        zero = tl.load(z_rows + group, mask=mask, other=0.0).to(tl.float32)
        w = (code.to(tl.float32) - zero) * scale
    else:
        scale = tl.load(s_rows + (kk // 32) * stride_sk, mask=mask, other=0).to(tl.int32)
        w = e2m1(code) * e8m0(scale)
    return w


@triton.jit
def packed_rows_dot(
    w_rows,
    s_rows,
    z_rows,
    x_ptr,
    x_scale,
    K,
    row_ok,
    stride_sk,
    INT4: tl.constexpr,
    GROUP: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SUB: tl.constexpr,
):
    """sum over k < K of w[row, k] * x[k] * x_scale, float32 [ROWS], for 4-bit rows (MXFP4 or
    int4 as packed_tile reads them) starting at byte pointers `w_rows` [R] (scale rows s_rows,
    zero rows z_rows [R]). The bytes are read as they lie, BLOCK_K / 2 of a row a step (vector
    loads), split into their low nibbles (even k) and high nibbles (odd k), each dotted with
    x's even and odd elements; a step is NG sub-tiles of SUB positions, each inside one scale
    group (SUB divides BLOCK_K and the group size), so a row's scale and zero are loaded once
    per sub-tile, not per weight."""
    NG: tl.constexpr = BLOCK_K // SUB
    HALF: tl.constexpr = SUB // 2
    # byte b of a row holds positions 2b (low nibble) and 2b + 1 (high): offsets written as
    # sums of aranges, so the compiler sees HALF contiguous bytes (vector loads)
    sub_bytes = tl.arange(0, NG)[None, :, None] * HALF
    bytes_ = tl.arange(0, HALF)[None, None, :]
    w3 = w_rows[:, None, None]
    s3 = s_rows[:, None, None]
    z3 = z_rows[:, None, None]
    ok3 = row_ok[:, None, None]
    acc = tl.zeros([ROWS, NG, HALF], tl.float32)
    for k0 in range(0, K, BLOCK_K):
        b = k0 // 2 + sub_bytes + bytes_  # [1, NG, HALF]
        pos = 2 * b  # the even positions
        even_ok = pos < K
        # K is even: b < K / 2 is pos < K, and keeps the mask constant over the vector
        byte = tl.load(w3 + b, mask=ok3 & (b < K // 2), other=0).to(tl.int32)
        lo = byte & 0xF
        hi = (byte >> 4) & 0xF
        first = k0 + 2 * sub_bytes  # [1, NG, 1]: the sub-tile's first position, its group's
        s_ok = ok3 & (first < K)
        group = (first // GROUP) * stride_sk
        x_even = tl.load(x_ptr + pos, mask=even_ok, other=0.0).to(tl.float32)
        x_odd = tl.load(x_ptr + pos + 1, mask=(pos + 1) < K, other=0.0).to(tl.float32)
        if INT4:
            scale = tl.load(s3 + group, mask=s_ok, other=0.0).to(tl.float32)
            zero = tl.load(z3 + group, mask=s_ok, other=0.0).to(tl.float32)
            # a plain conversion: the 2^23 trick (gemv_int4) compiled to more instructions here
            # (sm_90 SASS: 319 against 301 a warp per step at PACKED_LAUNCH's gate/up)
            w_lo = (lo.to(tl.float32) - zero) * scale
            w_hi = (hi.to(tl.float32) - zero) * scale
        else:
            # e2m1 x 2^-126 a weight; the 2^126 split between the row's scale and x (2^63
            # each: neither overflows for any e8m0 scale below 2^64 or |x| below 2^64), so a
            # weight costs its bit operations, a multiply and the FMA
            scale = e8m0(tl.load(s3 + group, mask=s_ok, other=0).to(tl.int32)) * TWO_63
            w_lo = e2m1_tiny(lo) * scale
            w_hi = e2m1_tiny(hi) * scale
            x_even *= TWO_63
            x_odd *= TWO_63
        acc += w_lo * x_even + w_hi * x_odd
    return tl.sum(tl.sum(acc, axis=2), axis=1) * x_scale


@triton.jit
def _gate_up_gemv_kernel(
    X,
    W13,
    B13,
    H,
    IDS,
    inter,
    K,
    E,
    stride_xm,
    stride_we,
    stride_wn,
    stride_be,
    stride_hm,
    S13,
    stride_se,
    stride_sn,
    stride_sk,
    Z13,
    up_row,
    TOPK: tl.constexpr,
    ACT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PDL: tl.constexpr,
    FP8: tl.constexpr = False,
    BN_Q: tl.constexpr = 1,
    BK_Q: tl.constexpr = 1,
    MXFP4: tl.constexpr = False,
    INT4: tl.constexpr = False,
    GROUP: tl.constexpr = 1,
    SUB: tl.constexpr = 0,
):
    pdl.wait_for_inputs(PDL)  # released after the loop, not here (pdl.py)
    pair = tl.program_id(0)
    nb = tl.program_id(1)
    e = tl.load(IDS + pair).to(tl.int64)
    if (e < 0) | (e >= E):
        return
    token = (pair // TOPK).to(tl.int64)
    cols = nb * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < inter
    ks = tl.arange(0, BLOCK_K)
    g_ptr = W13 + e * stride_we + cols[:, None].to(tl.int64) * stride_wn + ks[None, :]
    u_ptr = g_ptr + inter * stride_wn
    x_ptr = X + token * stride_xm + ks
    # FP8 blocks: the BLOCK_N rows lie in one block row (BN_Q % BLOCK_N == 0), so a tile's
    # scales vary along K only and scale x, not the weights.
    s_gate = S13 + e * stride_se + (nb * BLOCK_N // BN_Q) * stride_sn
    s_up = s_gate + up_row * stride_sn
    acc_g = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
    acc_u = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
    # MXFP4, int4: bytes, scales and zeros of the rows, gathered by input position
    # (packed_tile).
    row = cols[:, None].to(tl.int64)
    g_bytes = W13 + e * stride_we + row * stride_wn
    g_scales = S13 + e * stride_se + row * stride_sn
    g_zeros = Z13 + e * stride_se + row * stride_sn
    up_rows = inter * stride_sn
    if SUB:  # 4-bit rows read as bytes, nibbles paired with x's even and odd elements
        s_rows = S13 + e * stride_se + cols.to(tl.int64) * stride_sn
        z_rows = Z13 + e * stride_se + cols.to(tl.int64) * stride_sn
        w_rows = W13 + e * stride_we + cols.to(tl.int64) * stride_wn
        x_row = X + token * stride_xm
        gate = packed_rows_dot(
            w_rows, s_rows, z_rows, x_row, 1.0, K, col_ok, stride_sk, INT4, GROUP, BLOCK_N,
            BLOCK_K, SUB,
        )  # fmt: skip
        up = packed_rows_dot(
            w_rows + inter * stride_wn, s_rows + up_rows, z_rows + up_rows, x_row, 1.0, K,
            col_ok, stride_sk, INT4, GROUP, BLOCK_N, BLOCK_K, SUB,
        )  # fmt: skip
        pdl.release_dependents(PDL)
    else:
        for k0 in range(0, K, BLOCK_K):
            k_ok = (k0 + ks) < K
            x = tl.load(x_ptr + k0, mask=k_ok, other=0.0).to(tl.float32)[None, :]
            w_ok = col_ok[:, None] & k_ok[None, :]
            if MXFP4 or INT4:
                kk = (k0 + ks)[None, :]
                g = packed_tile(g_bytes, g_scales, g_zeros, kk, w_ok, stride_sk, INT4, GROUP)
                u = packed_tile(
                    g_bytes + inter * stride_wn, g_scales + up_rows, g_zeros + up_rows, kk, w_ok,
                    stride_sk, INT4, GROUP,
                )  # fmt: skip
                acc_g += g * x
                acc_u += u * x
            else:
                xg, xu = x, x
                if FP8:
                    k_blocks = ((k0 + ks) // BK_Q) * stride_sk
                    xg = x * tl.load(s_gate + k_blocks, mask=k_ok, other=0.0)[None, :]
                    xu = x * tl.load(s_up + k_blocks, mask=k_ok, other=0.0)[None, :]
                acc_g += tl.load(g_ptr + k0, mask=w_ok, other=0.0).to(tl.float32) * xg
                acc_u += tl.load(u_ptr + k0, mask=w_ok, other=0.0).to(tl.float32) * xu
        pdl.release_dependents(PDL)
        gate, up = tl.sum(acc_g, axis=1), tl.sum(acc_u, axis=1)
    if HAS_BIAS:
        b_row = B13 + e * stride_be + cols
        gate += tl.load(b_row, mask=col_ok, other=0.0).to(tl.float32)
        up += tl.load(b_row + inter, mask=col_ok, other=0.0).to(tl.float32)
    h = act_mul(gate, up, ACT)
    tl.store(H + pair.to(tl.int64) * stride_hm + cols, h, mask=col_ok)


@triton.jit
def _down_gemv_kernel(
    H,
    W2,
    B2,
    Y,
    IDS,
    WEIGHTS,
    PART,
    COUNT,
    N,
    K,
    E,
    stride_hm,
    stride_we,
    stride_wn,
    stride_be,
    stride_ym,
    S2,
    stride_se,
    stride_sn,
    stride_sk,
    Z2,
    TOPK: tl.constexpr,
    SLOTS: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PDL: tl.constexpr,
    FP8: tl.constexpr = False,
    BN_Q: tl.constexpr = 1,
    BK_Q: tl.constexpr = 1,
    MXFP4: tl.constexpr = False,
    INT4: tl.constexpr = False,
    GROUP: tl.constexpr = 1,
    SUB: tl.constexpr = 0,
):
    pdl.wait_for_inputs(PDL)  # released after the loop, not here (pdl.py)
    token = tl.program_id(0)
    nb = tl.program_id(1)
    first = tl.program_id(2) * SLOTS  # SLOTS < TOPK: one slot a program, finished together
    rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    ks = tl.arange(0, BLOCK_K)
    w_rows = rows[:, None].to(tl.int64) * stride_wn + ks[None, :]
    acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
    y_rows = tl.zeros([BLOCK_N], tl.float32)  # SUB: the rows' sums so far
    bias = tl.zeros([BLOCK_N], tl.float32)
    for j in range(SLOTS):
        pair = token * TOPK + first + j
        e = tl.load(IDS + pair).to(tl.int64)
        live = (e >= 0) & (e < E)
        k_live = tl.where(live, K, 0)  # a dead slot (id -1) loads nothing
        route_w = tl.load(WEIGHTS + pair)
        w_ptr = W2 + tl.where(live, e, 0) * stride_we + w_rows
        s_ptr = S2 + tl.where(live, e, 0) * stride_se + (nb * BLOCK_N // BN_Q) * stride_sn
        h_ptr = H + pair.to(tl.int64) * stride_hm + ks
        if HAS_BIAS:  # w2_bias[e] before the routing weight; a dead slot adds nothing
            b_ok = rows < tl.where(live, N, 0)
            b = tl.load(B2 + tl.where(live, e, 0) * stride_be + rows, mask=b_ok, other=0.0)
            bias += b.to(tl.float32) * route_w
        if SUB:  # 4-bit rows read as bytes (packed_rows_dot); a dead slot reads nothing
            expert = tl.where(live, e, 0)
            row = rows.to(tl.int64)
            scale_rows = expert * stride_se + row * stride_sn
            y_rows += packed_rows_dot(
                W2 + expert * stride_we + row * stride_wn, S2 + scale_rows, Z2 + scale_rows,
                H + pair.to(tl.int64) * stride_hm, route_w, k_live, row_ok, stride_sk, INT4,
                GROUP, BLOCK_N, BLOCK_K, SUB,
            )  # fmt: skip
        else:
            for k0 in range(0, K, BLOCK_K):
                k_ok = (k0 + ks) < k_live
                h = tl.load(h_ptr + k0, mask=k_ok, other=0.0) * route_w
                if FP8:  # the rows' block scales along I scale h (BN_Q % BLOCK_N == 0)
                    h *= tl.load(s_ptr + ((k0 + ks) // BK_Q) * stride_sk, mask=k_ok, other=0.0)
                w_ok = row_ok[:, None] & k_ok[None, :]
                if MXFP4 or INT4:
                    expert = tl.where(live, e, 0)
                    row = rows[:, None].to(tl.int64)
                    scale_rows = expert * stride_se + row * stride_sn
                    w = packed_tile(
                        W2 + expert * stride_we + row * stride_wn,
                        S2 + scale_rows,
                        Z2 + scale_rows,
                        (k0 + ks)[None, :],
                        w_ok,
                        stride_sk,
                        INT4,
                        GROUP,
                    )
                else:
                    w = tl.load(w_ptr + k0, mask=w_ok, other=0.0)
                acc += w.to(tl.float32) * h[None, :]
    pdl.release_dependents(PDL)
    y = (y_rows if SUB else tl.sum(acc, axis=1)) + bias
    split_k.finish(
        y,
        Y + token.to(tl.int64) * stride_ym + rows,
        Y,  # no bias left to add: each slot's is in y
        row_ok,
        PART,
        COUNT,
        token * tl.num_programs(1) + nb,
        tl.program_id(2),
        tl.num_programs(0) * tl.num_programs(1),
        False,
        TOPK // SLOTS,
        BLOCK_N,
    )


def experts_decode(
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
    """The spec's moe.experts (x [T, D], w13 [E, 2I, D], w2 [E, D, I], optional w13_bias
    [E, 2I] and w2_bias [E, D], FP8 blocks', MXFP4's or int4's w13_scale / w2_scale, int4's
    w13_zeros / w2_zeros, act-order's w13_perm: permuted_pairs) by the two GEMVs above.
    launch: {"gate_up": {...}, "down": {...}} overrides, and a target's warp_size."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    quant = quant_args(w13, w13_scale, w2_scale, block_size, w13_zeros, w2_zeros)
    if quant is False:  # not blocks a kernel takes: the spec's own computation (correct, slow)
        from sglang.ops.moe import experts as reference

        return reference(
            x, w13, w2, topk_weights, topk_ids, activation, w13_bias, w2_bias,
            w13_scale, w2_scale, block_size, w13_zeros, w2_zeros, w13_perm,
        )  # fmt: skip
    tokens, hidden = x.shape
    num_experts, inter = w2.shape[0], w2.shape[-1] * (2 if w2.dtype == torch.uint8 else 1)
    top_k = topk_ids.shape[-1]
    out = torch.empty_like(x)
    if tokens == 0 or hidden == 0:
        return out
    x = x if x.stride(-1) == 1 else x.contiguous()
    w13 = w13 if w13.stride(-1) == 1 else w13.contiguous()
    w2 = w2 if w2.stride(-1) == 1 else w2.contiguous()
    ids = topk_ids.reshape(-1)
    b13 = x if w13_bias is None else w13_bias.contiguous()  # x: a placeholder never read
    b2 = x if w2_bias is None else w2_bias.contiguous()
    weights = topk_weights.reshape(-1).float()
    table = DECODE_LAUNCH
    packed = bool(quant) and ("MXFP4" in quant["consts"] or "INT4" in quant["consts"])
    if packed:
        paired = {k: {**v, **PACKED_LAUNCH[k]} for k, v in DECODE_LAUNCH.items()}
        gather = not paired_sub(quant["groups"][0], paired["gate_up"]["block_k"])
        table = (
            {k: {**v, **GATHER_LAUNCH[k]} for k, v in DECODE_LAUNCH.items()} if gather else paired
        )
    gu = merged(table["gate_up"], launch and launch.get("gate_up"))
    dn = merged(table["down"], launch and launch.get("down"))
    consts, s13, s2, up_row = {}, (x, 0, 0, 0), (x, 0, 0, 0), 0  # x: a placeholder never read
    z13 = z2 = x
    groups = (1, 1)
    if quant:
        consts, up_row, groups = quant["consts"], quant["up_row"], quant["groups"]
        s13, s2 = ((s, *s.stride()) for s in quant["scales"])
        z13, z2 = quant["zeros"] or (x, x)
        if quant["rows"]:  # FP8: a program's rows within one block row (quant_args)
            gu["block_n"] = min(gu["block_n"], quant["rows"])
            dn["block_n"] = min(dn["block_n"], quant["rows"])
    h = torch.empty((tokens * top_k, inter), dtype=torch.float32, device=x.device)
    xg, gate_topk = (x, top_k) if w13_perm is None else (permuted_pairs(x, topk_ids, w13_perm), 1)
    if inter > 0:
        _gate_up_gemv_kernel[(tokens * top_k, triton.cdiv(inter, gu["block_n"]))](
            xg,
            w13,
            b13,
            h,
            ids,
            inter,
            hidden,
            num_experts,
            xg.stride(0),
            w13.stride(0),
            w13.stride(1),
            b13.stride(0),
            h.stride(0),
            *s13,
            z13,
            up_row,
            TOPK=gate_topk,
            ACT=ACTIVATIONS[activation],
            HAS_BIAS=w13_bias is not None,
            BLOCK_N=gu["block_n"],
            BLOCK_K=gu["block_k"],
            num_warps=warps(gu["num_warps"], launch),
            num_stages=gu["num_stages"],
            GROUP=groups[0],
            SUB=paired_sub(groups[0], gu["block_k"]) if packed else 0,
            **consts,
            **pdl.args(x.device),
        )
    blocks = triton.cdiv(hidden, dn["block_n"])
    split = bool(dn.get("split")) and top_k > 1 and tokens * blocks <= split_k.MAX_SLOTS
    _down_gemv_kernel[(tokens, blocks, top_k if split else 1)](
        h,
        w2,
        b2,
        out,
        ids,
        weights,
        split_k.workspace(top_k if split else 1, tokens * blocks, dn["block_n"], x.device),
        split_k.counters(x.device) if split else out,
        hidden,
        inter,
        num_experts,
        h.stride(0),
        w2.stride(0),
        w2.stride(1),
        b2.stride(0),
        out.stride(0),
        *s2,
        z2,
        TOPK=top_k,
        SLOTS=1 if split else top_k,
        HAS_BIAS=w2_bias is not None,
        BLOCK_N=dn["block_n"],
        BLOCK_K=dn["block_k"],
        num_warps=warps(dn["num_warps"], launch),
        num_stages=dn["num_stages"],
        GROUP=groups[1],
        SUB=paired_sub(groups[1], dn["block_k"]) if packed else 0,
        **consts,
        **pdl.args(x.device),
    )
    return out
