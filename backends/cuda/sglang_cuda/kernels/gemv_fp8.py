"""gemm.fp8 for a few rows (decode, M <= MAX_ROWS): a GEMV that reads the e4m3 weight once.

At M = 1 a linear is a pure read of W, so the kernel is shaped like sglang_triton.gemv: each
program owns BLOCK_N output features and streams their rows of W in [BLOCK_N, KG, KC] tiles
(KG scale groups of KC columns; KG * KC = BLOCK_K), multiplying by the dequantized activations
in float32 registers and reducing along K once at the end. The activations are quantized
exactly as the spec says (sglang.ops.gemm_fp8 / sglang.ops.quant.fp8), once per call by
_fp8_act_kernel (a float32 copy of their dequantized codes; "fused_act" in the launch: inside
every program's loop instead, as before, where the divisions bound the loop):

  block        per token per group of GROUP_K along K: s = amax / 448 over the group, q =
               e4m3(clamp(x / s)); the weight's block scale (one per GROUP_N rows: BLOCK_N
               divides GROUP_N) is folded into the dequantized activation vector, so a
               weight costs one convert and one FMA;
  per_channel  per token over all of K (a first pass over x's row for its amax); the weight's
               per-row scale multiplies the reduced row at the end;
  per_tensor   one scale for all of x (a first pass over its M rows), or the static
               input_scale; the weight's scale at the end.

A program serves one (row of x, block of N, part of K): program ids run the M rows of one
weight block next to each other, so for M > 1 the second read of a block comes from L2.
Split-K (sglang_triton.split_k: "split_k" in the launch) gives a small N more programs.

The e4m3 rounding is the hardware's saturating round-to-nearest-even cast on a GPU. Triton's
interpreter rounds some values wrongly when they round up to the next power of two (triton 3.9:
31.06 -> 16), so under it the cast is done in float32 arithmetic instead (the same values:
checked against torch's cast over every code and midpoint).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from sglang_triton import pdl, split_k
from sglang_triton.common import INTERPRET

MAX_ROWS = 4
"""Rows of x up to which gemm.fp8 takes this kernel (more: the tiled scaled GEMM)."""

GEMV_FP8_LAUNCH = {
    "block_n": 64,
    "block_k": 256,
    "num_warps": 8,
    "num_stages": 3,
    "split_k": "auto",
}
"""Launch parameters (benchmarks/gpu_decode_gemv.sh times others; a call may pass its own).
"dot": True takes the tensor-core variant for block scales (_fp8_block_dot_kernel); split_k:
programs per output block along K (a number, or "auto": sglang_triton.split_k.choose);
"fused_act": True quantizes the activations inside the GEMV's loop (every program, every
step) instead of once per call in _fp8_act_kernel (the default). "mma": True (block scales)
quantizes x once to e4m3 codes and scales (quantize_token_group) and runs
_fp8_block_mma_kernel: tl.dot on the codes, split-K as the GEMV ("mma": "fused" quantizes x
inside the kernel's loop instead of in a launch of its own; "waves": the auto split's
target programs per processor, default 4); block_k is unused there (one scale group a step)."""

GEMV_FP8_BLOCK_LAUNCH = {
    "mma": True,
    "block_n": 64,
    "block_k": 256,
    "num_warps": 4,
    "num_stages": 3,
    "split_k": "auto",
}
"""The block-scale scheme's launch (DeepSeek-V3 / Qwen3 FP8 checkpoints): the tensor-core
kernel, the fastest of 12 launches on an H200 over Llama-3.1-8B's four shapes at M = 1
(benchmarks/bench_decode_gemv.py --only fp8, 2026-12-04): 78.5 us in total against 94.2 us for
the GEMV (GEMV_FP8_LAUNCH) and 134.8 us for the tiled scaled GEMM; 6 stages, 128 rows, 8 warps,
8 waves and the fused quantization were slower."""

# Globals a kernel reads must be constexprs (the compiler refuses others; the interpreter
# does not check).
E4M3_MAX = tl.constexpr(448.0)
PER_TENSOR, PER_CHANNEL, BLOCK = tl.constexpr(0), tl.constexpr(1), tl.constexpr(2)
_SCHEMES = {"per_tensor": 0, "per_channel": 1, "block": 2}
_EMULATE_CAST = tl.constexpr(INTERPRET)


@triton.jit
def _e4m3(v, EMULATE: tl.constexpr):
    """Already-scaled float32 values -> the nearest e4m3fn value (saturating, ties to even),
    in float32."""
    v = tl.clamp(v, -E4M3_MAX, E4M3_MAX)
    if EMULATE:
        bits = v.to(tl.int32, bitcast=True)
        e = tl.maximum(((bits >> 23) & 0xFF) - 127, -6)  # e4m3's subnormals share 2^-6's step
        step = ((e - 3 + 127) << 23).to(tl.float32, bitcast=True)  # 3 mantissa bits
        r = v / step  # exact: a power of two
        r = (r + 12582912.0) - 12582912.0  # round half to even (1.5 * 2^23)
        return r * step
    return v.to(tl.float8e4nv).to(tl.float32)


@triton.jit
def _safe(s):
    return tl.where(s > 0, s, 1.0)


@triton.jit
def _activation_scale(
    X,
    XS,
    m,
    M,
    K,
    stride_xm,
    koff,
    SCHEME: tl.constexpr,
    STATIC: tl.constexpr,
    KG: tl.constexpr,
    KC: tl.constexpr,
):
    """The per-tensor / per-channel activation scale: XS (static), else the amax over x's row
    (per channel) or over all M rows (per tensor), / 448."""
    if STATIC:
        return tl.load(XS).to(tl.float32)
    amax = tl.zeros([KG, KC], tl.float32)
    first = m
    last = m + 1
    if SCHEME == PER_TENSOR:
        first = 0
        last = M
    for r in range(first, last):
        for k0 in range(0, K, KG * KC):
            k = k0 + koff
            v = tl.load(X + r * stride_xm + k, mask=k < K, other=0.0)
            amax = tl.maximum(amax, tl.abs(v.to(tl.float32)))
    return tl.math.div_rn(tl.max(tl.max(amax, axis=1), axis=0), E4M3_MAX)


@triton.jit
def _fp8_gemv_kernel(
    X,
    W,
    WS,
    XS,
    B,
    Y,
    PART,
    COUNT,
    M,
    N,
    K,
    steps_per_split,
    stride_xm,
    stride_wn,
    stride_ws,
    stride_ym,
    SCHEME: tl.constexpr,
    STATIC: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    GROUP_N: tl.constexpr,
    KG: tl.constexpr,
    KC: tl.constexpr,
    BLOCK_N: tl.constexpr,
    EMULATE: tl.constexpr,
    SPLIT: tl.constexpr,
    PRE: tl.constexpr,
    PDL: tl.constexpr,
):
    pdl.wait_for_inputs(PDL)  # released after the loop, not here (pdl.py)
    pid = tl.program_id(0)
    ks = tl.program_id(1)
    m = pid % M
    nb = pid // M
    rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    kg = tl.arange(0, KG)
    kc = tl.arange(0, KC)
    koff = kg[:, None] * KC + kc[None, :]  # [KG, KC]: this step's columns
    x_row = X + m.to(tl.int64) * stride_xm

    xs = 1.0
    if SCHEME != BLOCK and not PRE:
        xs = _activation_scale(X, XS, m, M, K, stride_xm, koff, SCHEME, STATIC, KG, KC)
    n_groups = tl.cdiv(K, KC)
    ws_row = WS + ((nb * BLOCK_N) // GROUP_N) * stride_ws  # block: this block's scale row

    acc = tl.zeros([BLOCK_N, KG, KC], tl.float32)
    w_ptr = W + rows[:, None, None].to(tl.int64) * stride_wn + koff[None, :, :]
    k_begin = ks * steps_per_split * (KG * KC)
    k_end = tl.minimum(K, k_begin + steps_per_split * (KG * KC))
    for k0 in range(k_begin, k_end, KG * KC):
        k = k0 + koff
        k_ok = k < K
        x = tl.load(x_row + k, mask=k_ok, other=0.0).to(tl.float32)
        if PRE:  # x holds the quantized activations, dequantized (_fp8_act_kernel)
            xd = x
            if SCHEME == BLOCK:
                g = k0 // KC + kg
                xd = x * tl.load(ws_row + g, mask=g < n_groups, other=0.0)[:, None]
        elif SCHEME == BLOCK:
            s = tl.math.div_rn(tl.max(tl.abs(x), axis=1), E4M3_MAX)  # [KG]: one per group
            q = _e4m3(tl.math.div_rn(x, _safe(s)[:, None]), EMULATE)
            g = k0 // KC + kg
            sw = tl.load(ws_row + g, mask=g < n_groups, other=0.0)
            xd = q * (s * sw)[:, None]
        else:
            xd = _e4m3(tl.math.div_rn(x, _safe(xs)), EMULATE) * xs
        w = tl.load(w_ptr + k0, mask=row_ok[:, None, None] & k_ok[None, :, :], other=0.0)
        acc += w.to(tl.float32) * xd[None, :, :]
    pdl.release_dependents(PDL)
    y = tl.sum(tl.sum(acc, axis=2), axis=1)
    if SCHEME == PER_CHANNEL:
        y = y * tl.load(WS + rows, mask=row_ok, other=0.0)
    elif SCHEME == PER_TENSOR:
        y = y * tl.load(WS)
    split_k.finish(
        y,
        Y + m.to(tl.int64) * stride_ym + rows,
        B + rows,
        row_ok,
        PART,
        COUNT,
        pid,
        ks,
        tl.num_programs(0),
        HAS_BIAS,
        SPLIT,
        BLOCK_N,
    )


@triton.jit
def _fp8_act_kernel(
    X,
    XS,
    XD,
    M,
    K,
    stride_xm,
    SCHEME: tl.constexpr,
    STATIC: tl.constexpr,
    KG: tl.constexpr,
    KC: tl.constexpr,
    EMULATE: tl.constexpr,
    PDL: tl.constexpr,
):
    """x [M, K] -> its e4m3 quantization, dequantized, in float32 (XD [M, K], contiguous): the
    activation half of the scheme, once per call rather than in every program of the GEMV
    (a per-element IEEE division and, for blocks, a reduction per group: the GEMV's loop was
    bound by them, not by the weight's bytes). One program per row and KG * KC columns; the
    block scheme's groups are KC wide; the other schemes' scale comes from XS (static) or
    from the amax over the row (per channel) or over all M rows (per tensor)."""
    pdl.enter(PDL)
    m = tl.program_id(0)
    c = tl.program_id(1)
    kg = tl.arange(0, KG)
    kc = tl.arange(0, KC)
    koff = kg[:, None] * KC + kc[None, :]
    k = c * (KG * KC) + koff
    k_ok = k < K
    x = tl.load(X + m.to(tl.int64) * stride_xm + k, mask=k_ok, other=0.0).to(tl.float32)
    if SCHEME == BLOCK:
        s = tl.math.div_rn(tl.max(tl.abs(x), axis=1), E4M3_MAX)  # [KG]: one per group
        xd = _e4m3(tl.math.div_rn(x, _safe(s)[:, None]), EMULATE) * s[:, None]
    else:
        xs = _activation_scale(X, XS, m, M, K, stride_xm, koff, SCHEME, STATIC, KG, KC)
        xd = _e4m3(tl.math.div_rn(x, _safe(xs)), EMULATE) * xs
    tl.store(XD + m.to(tl.int64) * K + k, xd, mask=k_ok)


@triton.jit
def _fp8_group_quant_kernel(
    X,
    Q,
    S,
    K,
    stride_xm,
    stride_sm,
    stride_sg,
    KG: tl.constexpr,
    KC: tl.constexpr,
    EMULATE: tl.constexpr,
    PDL: tl.constexpr,
):
    """x [M, K] -> e4m3 codes Q [M, K] (contiguous) and one scale per token per KC-wide group
    S[m, g] (any strides: M-major for cuBLASLt's block-wise scaling), as
    sglang.ops.quant.fp8.quantize_fp8_token_group computes them (a partial last group's amax
    over its real columns). One program per row and KG groups."""
    pdl.enter(PDL)
    m = tl.program_id(0)
    c = tl.program_id(1)
    kg = tl.arange(0, KG)
    kc = tl.arange(0, KC)
    k = c * (KG * KC) + kg[:, None] * KC + kc[None, :]
    k_ok = k < K
    x = tl.load(X + m.to(tl.int64) * stride_xm + k, mask=k_ok, other=0.0).to(tl.float32)
    s = tl.math.div_rn(tl.max(tl.abs(x), axis=1), E4M3_MAX)  # [KG]
    q = _e4m3(tl.math.div_rn(x, _safe(s)[:, None]), EMULATE)
    tl.store(Q + m.to(tl.int64) * K + k, q.to(tl.float8e4nv), mask=k_ok)
    g = c * KG + kg
    tl.store(S + m.to(tl.int64) * stride_sm + g * stride_sg, s, mask=g < tl.cdiv(K, KC))


def quantize_token_group(x: torch.Tensor, group: int, m_major: bool = False):
    """(e4m3 codes [M, K], float32 scales [M, ceil(K/group)]) of x per token per K-group, in
    one launch (the torch helper is ~10 small kernels: most of a prefill GEMM's time below
    ~1k rows). m_major: the scales stored column by column (stride (1, M)), as
    torch._scaled_mm's block-wise path takes them. group: a power of two."""
    m, k = x.shape
    x = x if x.stride(-1) == 1 else x.contiguous()
    groups = triton.cdiv(k, group)
    q = torch.empty((m, k), dtype=torch.float8_e4m3fn, device=x.device)
    if m_major:
        scale = torch.empty((groups, m), dtype=torch.float32, device=x.device).t()
    else:
        scale = torch.empty((m, groups), dtype=torch.float32, device=x.device)
    if m == 0 or k == 0:
        return q, scale
    kg = max(1024 // group, 1)
    _fp8_group_quant_kernel[(m, triton.cdiv(groups, kg))](
        x,
        q,
        scale,
        k,
        x.stride(0),
        scale.stride(0),
        scale.stride(1),
        KG=kg,
        KC=group,
        EMULATE=_EMULATE_CAST,
        num_warps=4,
        **pdl.args(x.device),
    )
    return q, scale


@triton.jit
def _fp8_block_dot_kernel(
    X,
    W,
    WS,
    B,
    Y,
    M,
    N,
    K,
    stride_xm,
    stride_wn,
    stride_ws,
    stride_ym,
    HAS_BIAS: tl.constexpr,
    GROUP_N: tl.constexpr,
    KC: tl.constexpr,
    BLOCK_N: tl.constexpr,
    EMULATE: tl.constexpr,
):
    """The block scheme on the tensor cores (launch key "dot"): all M <= 16 rows of x in one
    [16, KC] tile, quantized per group as above, times the [KC, BLOCK_N] e4m3 weight tile by
    tl.dot, each group's product scaled into a float32 accumulator (no fp8 conversions of
    the weight in registers; 15 of the 16 MMA rows are padding)."""
    nb = tl.program_id(0)
    r = tl.arange(0, 16)
    r_ok = r < M
    cols = nb * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < N
    kc = tl.arange(0, KC)
    x_ptr = X + r[:, None].to(tl.int64) * stride_xm + kc[None, :]
    w_ptr = W + cols[None, :].to(tl.int64) * stride_wn + kc[:, None]  # [KC, BLOCK_N]
    ws_row = WS + ((nb * BLOCK_N) // GROUP_N) * stride_ws
    acc = tl.zeros([16, BLOCK_N], tl.float32)
    for k0 in range(0, K, KC):
        k_ok = (k0 + kc) < K
        x = tl.load(x_ptr + k0, mask=r_ok[:, None] & k_ok[None, :], other=0.0).to(tl.float32)
        s = tl.math.div_rn(tl.max(tl.abs(x), axis=1), E4M3_MAX)  # [16]: row m's group scale
        q = _e4m3(tl.math.div_rn(x, _safe(s)[:, None]), EMULATE).to(tl.float8e4nv)
        w = tl.load(w_ptr + k0, mask=k_ok[:, None] & col_ok[None, :], other=0.0)
        part = tl.dot(q, w)
        acc += part * (s * tl.load(ws_row + k0 // KC))[:, None]
    if HAS_BIAS:
        acc += tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    y_ptr = Y + r[:, None].to(tl.int64) * stride_ym + cols[None, :]
    tl.store(y_ptr, acc.to(Y.dtype.element_ty), mask=r_ok[:, None] & col_ok[None, :])


@triton.jit
def _fp8_block_mma_kernel(
    XQ,
    XS,
    W,
    WS,
    B,
    Y,
    PART,
    COUNT,
    M,
    N,
    K,
    steps_per_split,
    stride_xm,
    stride_xs,
    stride_wn,
    stride_ws,
    stride_ym,
    HAS_BIAS: tl.constexpr,
    GROUP_N: tl.constexpr,
    KC: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SPLIT: tl.constexpr,
    FUSED: tl.constexpr,
    EMULATE: tl.constexpr,
    PDL: tl.constexpr,
):
    """The block scheme on the tensor cores with x quantized once per call (launch key "mma"):
    XQ [M, K] e4m3 codes and XS [M, groups] their scales (quantize_token_group). A program
    owns BLOCK_N output features and a part of K (split-K as the GEMV's): per KC-wide group,
    tl.dot of the [BLOCK_N, KC] weight tile (the MMA's first operand: a 64-row block takes
    wgmma) with x's codes transposed, [KC, 16] (M <= 16 columns, the rest zero), scaled by
    the group's two scales into a float32 accumulator. No conversions of the weight in
    registers, and the weight tiles are multi-buffered by the compiler's pipeliner (more
    bytes in flight than the GEMV's register loads). FUSED = M > 0 ("mma": "fused"): XQ is x
    itself, its M rows quantized per group inside the loop (no quantization launch; XS
    unused)."""
    nb = tl.program_id(0)
    ks = tl.program_id(1)
    r = tl.arange(0, 16)
    r_ok = r < M
    rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    kc = tl.arange(0, KC)
    w_ptr = W + rows[:, None].to(tl.int64) * stride_wn + kc[None, :]  # [BLOCK_N, KC]
    x_ptr = XQ + r[None, :].to(tl.int64) * stride_xm + kc[:, None]  # [KC, 16]
    ws_row = WS + ((nb * BLOCK_N) // GROUP_N) * stride_ws
    acc = tl.zeros([BLOCK_N, 16], tl.float32)
    g_begin = ks * steps_per_split
    g_end = tl.minimum(tl.cdiv(K, KC), g_begin + steps_per_split)
    pdl.wait_for_inputs(PDL)  # released after the loop, not here (pdl.py)
    for g in range(g_begin, g_end):
        k_ok = (g * KC + kc) < K
        w = tl.load(w_ptr + g * KC, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
        if FUSED > 0:  # x's FUSED = M rows quantized one by one (the tile's other 16 - M: 0)
            xt = tl.zeros([KC, 16], tl.float32)
            sx = tl.zeros([16], tl.float32)
            for m in tl.static_range(FUSED):
                xm = tl.load(XQ + m * stride_xm + g * KC + kc, mask=k_ok, other=0.0)
                xm = xm.to(tl.float32)
                sm = tl.math.div_rn(tl.max(tl.abs(xm), axis=0), E4M3_MAX)
                qm = _e4m3(tl.math.div_rn(xm, _safe(sm)), EMULATE)
                xt = tl.where(r[None, :] == m, qm[:, None], xt)
                sx = tl.where(r == m, sm, sx)
            xq = xt.to(tl.float8e4nv)
        else:
            xq = tl.load(x_ptr + g * KC, mask=k_ok[:, None] & r_ok[None, :], other=0.0)
            sx = tl.load(XS + r * stride_xs + g, mask=r_ok, other=0.0)
        s = sx * tl.load(ws_row + g)
        acc += tl.dot(w, xq) * s[None, :]
    pdl.release_dependents(PDL)
    split_k.finish_columns(
        acc, M, Y, stride_ym, B, rows, row_ok, PART, COUNT, nb, ks, HAS_BIAS, SPLIT, BLOCK_N
    )


def applies(x: torch.Tensor, scheme: str, block_size=(128, 128), launch=None) -> bool:
    """A few rows of a 16/32-bit float x; for block scales, a launch whose BLOCK_N divides the
    weight's row group and whose BLOCK_K is a whole number of K groups."""
    if x.dim() != 2 or not 0 < x.shape[0] <= MAX_ROWS or x.shape[1] == 0:
        return False
    if scheme != "block":
        return scheme in ("per_tensor", "per_channel")
    cfg = _launch(scheme, launch)
    bn, bk = block_size
    groups = max(cfg["block_k"] // bk, 1)
    if (cfg.get("dot") or cfg.get("mma")) and (cfg["block_n"] < 16 or bk < 32):
        return False  # the MMA's smallest tile
    return (
        bn % cfg["block_n"] == 0
        and _pow2(bk)
        and _pow2(groups)
        and (cfg["block_k"] % bk == 0 or cfg["block_k"] < bk)
    )


def _launch(scheme: str, launch: dict | None) -> dict:
    """The scheme's default table, or a launch given whole over the generic table (the
    benchmark's candidates)."""
    if launch is None:
        return GEMV_FP8_BLOCK_LAUNCH if scheme == "block" else GEMV_FP8_LAUNCH
    return {**GEMV_FP8_LAUNCH, **launch}


def _pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


def quantized_activations(x, scheme, xs, group_k, static):
    """x [M, K] quantized to e4m3 by the scheme and dequantized, float32 [M, K] (one launch:
    _fp8_act_kernel); xs is the static input scale (or any float32 tensor when dynamic)."""
    m, k = x.shape
    xd = torch.empty((m, k), dtype=torch.float32, device=x.device)
    kg, kc = (max(1024 // group_k, 1), group_k) if scheme == "block" else (1, 1024)
    _fp8_act_kernel[(m, triton.cdiv(k, kg * kc))](
        x,
        xs,
        xd,
        m,
        k,
        x.stride(0),
        SCHEME=_SCHEMES[scheme],
        STATIC=static,
        KG=kg,
        KC=kc,
        EMULATE=_EMULATE_CAST,
        num_warps=4,
        **pdl.args(x.device),
    )
    return xd


def gemv_fp8(
    x, weight, weight_scale, scheme, input_scale=None, block_size=(128, 128), bias=None, launch=None
):
    """gemm.fp8 (the spec's arguments) for M <= MAX_ROWS rows; see `applies`."""
    cfg = _launch(scheme, launch)
    m, k = x.shape
    n = weight.shape[0]
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if n == 0:
        return y
    x = x if x.stride(-1) == 1 else x.contiguous()
    weight = weight if weight.stride(-1) == 1 else weight.contiguous()
    ws = weight_scale.float()
    block_n, block_k = cfg["block_n"], cfg["block_k"]
    if scheme == "block":
        group_n, group_k = block_size
        kg, kc = max(block_k // group_k, 1), group_k
        ws = ws.contiguous()
    else:
        group_n, kg, kc = block_n, 1, block_k
    xs = input_scale.float() if input_scale is not None else ws
    if scheme == "block" and not cfg.get("dot"):  # one row: the CUDA C++ GEMV where it is on
        from sglang_cuda.kernels import gemv_fp8_rows_cuda

        plan = gemv_fp8_rows_cuda.plan(x, weight, ws, block_size, cfg.get("rows_cuda"))
        if plan is not None:
            return gemv_fp8_rows_cuda.gemv_fp8_rows(x, weight, ws, bias, plan, y)
    if scheme == "block" and cfg.get("dot"):
        _fp8_block_dot_kernel[(triton.cdiv(n, block_n),)](
            x,
            weight,
            ws,
            bias if bias is not None else y,
            y,
            m,
            n,
            k,
            x.stride(0),
            weight.stride(0),
            ws.stride(0),
            y.stride(0),
            HAS_BIAS=bias is not None,
            GROUP_N=group_n,
            KC=group_k,
            BLOCK_N=block_n,
            EMULATE=_EMULATE_CAST,
            num_warps=cfg["num_warps"],
            num_stages=cfg["num_stages"],
        )
        return y
    if scheme == "block" and cfg.get("mma"):
        return _block_mma(x, weight, ws, group_n, group_k, bias, y, cfg)
    pre = not cfg.get("fused_act", False)
    if pre:
        x = quantized_activations(x, scheme, xs, block_size[1], input_scale is not None)
    slots = triton.cdiv(n, block_n) * m
    steps = triton.cdiv(k, kg * kc)
    split = split_k.choose(cfg.get("split_k", 1), slots, steps, x.device)
    _fp8_gemv_kernel[(slots, split)](
        x,
        weight,
        ws,
        xs,
        bias if bias is not None else y,
        y,
        split_k.workspace(split, slots, block_n, x.device),
        split_k.counters(x.device) if split > 1 else y,
        m,
        n,
        k,
        triton.cdiv(steps, split),
        x.stride(0),
        weight.stride(0),
        ws.stride(0) if ws.dim() == 2 else 0,
        y.stride(0),
        SCHEME=_SCHEMES[scheme],
        STATIC=input_scale is not None,
        HAS_BIAS=bias is not None,
        GROUP_N=group_n,
        KG=kg,
        KC=kc,
        BLOCK_N=block_n,
        EMULATE=_EMULATE_CAST,
        SPLIT=split,
        PRE=pre,
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
        **pdl.args(x.device),
    )
    return y


def _block_mma(x, weight, ws, group_n, group_k, bias, y, cfg):
    """The "mma" launch: x quantized once (quantize_token_group; "fused": in the kernel's
    loop), _fp8_block_mma_kernel."""
    m, k = x.shape
    n = weight.shape[0]
    fused = cfg["mma"] == "fused"
    if not fused:  # the cuda backend's CUDA C++ kernel where it applies (gemv_fp8_cuda)
        from sglang_cuda.kernels import gemv_fp8_cuda

        plan = gemv_fp8_cuda.plan(x, weight, ws, (group_n, group_k), cfg.get("cuda"))
        if plan is not None:
            xq, xs = quantize_token_group(x, group_k)
            return gemv_fp8_cuda.gemv_fp8_block(xq, xs, weight, ws, bias, y, plan)
    xq, xs = (x, x) if fused else quantize_token_group(x, group_k)
    block_n = cfg["block_n"]
    slots = triton.cdiv(n, block_n)
    steps = triton.cdiv(k, group_k)
    split = split_k.choose(cfg.get("split_k", 1), slots, steps, x.device, cfg.get("waves", 4))
    split = split if slots * m <= split_k.MAX_SLOTS else 1
    _fp8_block_mma_kernel[(slots, split)](
        xq,
        xs,
        weight,
        ws,
        bias if bias is not None else y,
        y,
        split_k.workspace(split, slots * m, block_n, x.device),
        split_k.counters(x.device) if split > 1 else y,
        m,
        n,
        k,
        triton.cdiv(steps, split),
        xq.stride(0),
        xs.stride(0),
        weight.stride(0),
        ws.stride(0),
        y.stride(0),
        HAS_BIAS=bias is not None,
        GROUP_N=group_n,
        KC=group_k,
        BLOCK_N=block_n,
        SPLIT=split,
        FUSED=m if fused else 0,
        EMULATE=_EMULATE_CAST,
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
        **pdl.args(x.device),
    )
    return y
