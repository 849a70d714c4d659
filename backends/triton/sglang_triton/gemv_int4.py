"""gemm.int4 for a few rows (decode, M <= MMA_MAX_ROWS): a GEMV over gemm_int4.prepare's layout.

The weight is int32 [ceil(K/8), N] packed along K (nibble i of word row r is input row 8r + i),
with float32 scales and zero-times-scale [K/G, N], or float16 (scale, zero) pairs
(gemm_int4's module docstring; `group_scales` reads either). At M = 1 the
linear is a read of those 4-bit codes, so each program owns BLOCK_N output columns and streams
[KP, BLOCK_N] words (8 * KP input rows) down K: the words are unpacked in registers into a
[KP, 8, BLOCK_N] tile, (q * s - zs) * x accumulated in float32 there, and the tile reduced
along K once at the end. No tl.dot. A step within one scale group reads one row of
scales; a step over several groups (8 * KP > G: more bytes in flight per program) or across a
group boundary reads each word row's scales (G / 8 rows share one, from L1). A nibble becomes a float as
the bit pattern of 2^23 + q minus 2^23 (a logic op and an add: integer-to-float conversions
run at a quarter of the FMA rate). GPTQ act-order reads x's columns through `perm`.

A program serves one (row of x, block of N); program ids run the rows of one weight block next
to each other, so for M > 1 the block's second read comes from L2.

With 16-bit activations the default is the tensor-core kernel (_int4_mma_kernel, launch key
"mma"), because the CUDA-core GEMV above runs out of instruction issue, not bandwidth: every
nibble costs a shift, a mask, an OR, a subtraction and two FMAs in float32, and its
[KP, 8, BLOCK_N] accumulator needs ~250 registers a thread (two programs per SM). The mma
kernel computes y^T = W^T x^T as tl.dot of a [BLOCK_N, BK] weight tile (the MMA's first
operand: on Hopper a 64-row wgmma that reads it from registers) and x^T [BK, 16] (M <= 16
columns used). A nibble q becomes the 16-bit float MAGIC + q by OR-ing its bits into MAGIC's
(128 in bfloat16, 1024 in float16: exact), so the dot sums (MAGIC + q) x and the group's
scale and zero come in once per output and step: y += s * dot - (zs + MAGIC * s) * sum(x).
The tile's columns are the step's input rows in the order the MMA's register layout hands
them to a thread (`_mma_rows`: whole words per thread, no shuffles or shared-memory round
trip for the weight); x is read in order and put in that order in registers. One step is one
scale group (BK = the group size, 32 to 128) or a part of one (128 of a larger group); x^T,
the sums of x and the scales are loaded a step ahead. Up to MMA_MAX_ROWS rows.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from sglang_triton import pdl, split_k
from sglang_triton.common import INTERPRET, mma
from sglang_triton.target import merged, warps

MAX_ROWS = 4
"""Rows of x up to which gemm.int4 takes the CUDA-core GEMV (more: the tiled W4A16 GEMM)."""

MMA_MAX_ROWS = 16
"""Rows of x up to which gemm.int4 takes the tensor-core kernel (its x^T tile has 16 columns:
up to 16 rows cost the same weight read)."""

GEMV_INT4_LAUNCH = {
    "block_n": 64,
    "block_k": 128,
    "num_warps": 4,
    "num_stages": 3,
    "split_k": "auto",
}
"""The CUDA-core GEMV's launch (float32 x, group sizes the mma kernel's steps do not divide, or
a launch with "mma": False); block_k: input rows per step (a power of two); split_k: programs
per output block along K (a number, or "auto": split_k.choose). 128 columns were the fastest
of 7 launches on an H200 (823-939 GB/s on the Llama-8B shapes) while this was the bf16 decode
path; 64 since it is a fallback: at 128 a launch the JIT specialises for aligned pointers and
strides spills registers (Triton 3.9, tests/cuda/test_decode_kernels_compile.py)."""

GEMV_INT4_MMA_LAUNCH = {
    "asm": True,
    "ones": False,
    "block_n": 128,
    "num_warps": 4,
    "num_stages": 3,
    "split_k": "auto",
}
"""The tensor-core kernel's launch, taken for 16-bit x whose group size a step divides (a launch
with "mma": False keeps the CUDA-core GEMV). 4 warps: one Hopper warpgroup, a 64-row wgmma
tile per 64 rows of the block. "asm": the nibbles unpacked by inline PTX (`_nibble_pair`;
NVIDIA only); "ones": the sums of x's rows by an MMA with a tile of ones (else a reduction
across the warps, the default). On an H200 over Llama-3.1-8B's four shapes at M = 1, AWQ g128
(benchmarks/bench_decode_gemv.py --only int4, 2026-12-04 evening): 65.4 us a layer; 72.6 with
64 rows, 74.4 with the ones MMA, 88.1 without "asm", 137.5 for the CUDA-core GEMV, 256.3 for
the tiled kernel."""

MMA_STEPS = (128, 64, 32)
"""Input rows per step of the mma kernel: the largest of these that divides the group size."""


@triton.jit
def group_scales(S, ZS, off, mask, PAIRS: tl.constexpr):
    """The scales and scaled zeros (float32) of a prepared int4 weight at scale entries `off`:
    the float32 scales S and zs ZS, or (PAIRS) float16 (scale, zero) pairs at S, zs = z * s
    formed in float32 as gemm_int4.prepare forms it (Int4Weight.scale_args)."""
    if PAIRS:
        s = tl.load(S + 2 * off, mask=mask, other=0.0).to(tl.float32)
        zs = tl.load(S + 2 * off + 1, mask=mask, other=0.0).to(tl.float32) * s
    else:
        s = tl.load(S + off, mask=mask, other=0.0)
        zs = tl.load(ZS + off, mask=mask, other=0.0)
    return s, zs


@triton.jit
def _int4_gemv_kernel(
    X,
    QW,
    S,
    ZS,
    PERM,
    B,
    Y,
    PART,
    COUNT,
    M,
    N,
    K,
    steps_per_split,
    stride_xm,
    stride_qk,
    stride_s,
    stride_ym,
    G: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    KP: tl.constexpr,
    GATHER: tl.constexpr,
    SPLIT: tl.constexpr,
    PDL: tl.constexpr,
    PAIRS: tl.constexpr,
):
    pdl.wait_for_inputs(PDL)  # released after the loop, not here (pdl.py)
    pid = tl.program_id(0)
    ks = tl.program_id(1)
    m = pid % M
    nb = pid // M
    cols = nb * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < N
    r = tl.arange(0, KP)
    i = tl.arange(0, 8)
    k_in_step = r[:, None] * 8 + i[None, :]  # [KP, 8]: input row of each nibble
    shifts = (i * 4)[None, :, None]
    word_rows = tl.cdiv(K, 8)
    x_row = X + m.to(tl.int64) * stride_xm
    acc = tl.zeros([KP, 8, BLOCK_N], tl.float32)
    k_begin = ks * steps_per_split * (KP * 8)
    k_end = tl.minimum(K, k_begin + steps_per_split * (KP * 8))
    for k0 in range(k_begin, k_end, KP * 8):
        kk = k0 + k_in_step
        k_ok = kk < K
        if HAS_PERM:
            src = tl.load(PERM + kk, mask=k_ok, other=0)
        else:
            src = kk
        x = tl.load(x_row + src, mask=k_ok, other=0.0).to(tl.float32)
        wr = k0 // 8 + r
        words = tl.load(
            QW + wr[:, None].to(tl.int64) * stride_qk + cols[None, :],
            mask=(wr < word_rows)[:, None] & col_ok[None, :],
            other=0,
        )
        bits = ((words[:, None, :] >> shifts) & 0xF) | 0x4B000000
        q = bits.to(tl.float32, bitcast=True) - 8388608.0  # exact: 2^23 + q - 2^23
        if GATHER:  # one scale row per word row: [KP, 1, BLOCK_N]
            g_off = ((wr * 8) // G)[:, None] * stride_s + cols[None, :]
            g_ok = (wr < word_rows)[:, None] & col_ok[None, :]
            s, zs = group_scales(S, ZS, g_off, g_ok, PAIRS)
            s, zs = s[:, None, :], zs[:, None, :]
        else:  # the whole step in one group: one row
            g_off = (k0 // G) * stride_s + cols
            s, zs = group_scales(S, ZS, g_off, col_ok, PAIRS)
            s, zs = s[None, None, :], zs[None, None, :]
        acc += (q * s - zs) * x[:, :, None]
    y = tl.sum(tl.sum(acc, axis=0), axis=0)
    pdl.release_dependents(PDL)
    split_k.finish(
        y,
        Y + m.to(tl.int64) * stride_ym + cols,
        B + cols,
        col_ok,
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
def _nibble(w, e: tl.constexpr, MAGIC: tl.constexpr, DT: tl.constexpr):
    """Nibble e of each int32 word as the 16-bit float MAGIC's value + q (exact): its bits OR-ed
    into MAGIC's."""
    return (((w >> (4 * e)) & 0xF) | MAGIC).to(tl.int16).to(DT, bitcast=True)


def _pair_asm(magic: int) -> str:
    """PTX: the low nibbles of a word's two 16-bit halves OR-ed into `magic`, as two 16-bit
    results (one LOP3: (v & 0x000F000F) | magic:magic)."""
    return (
        "{ .reg .b32 t; "
        f"lop3.b32 t, $2, 0x000F000F, {magic * 0x10001:#x}, 0xea; "
        "mov.b32 {$0, $1}, t; }"
    )


_PAIR_BF16 = tl.constexpr(_pair_asm(0x4300))
_PAIR_F16 = tl.constexpr(_pair_asm(0x6400))


@triton.jit
def _nibble_pair(w, e: tl.constexpr, MAGIC: tl.constexpr, DT: tl.constexpr, ASM: tl.constexpr):
    """Nibbles e and e + 4 of each word, joined ([..., 2]): the two halves of one 32-bit
    register of the MMA's operand. ASM: one shift and one LOP3 for both (PTX: the 16-bit
    halves of (w >> 4e) & 0x000F000F | MAGIC:MAGIC), not a shift, a mask and an OR each and
    a byte permute to pair them."""
    if ASM:
        v = w >> (4 * e)
        if MAGIC == 0x6400:
            lo, hi = tl.inline_asm_elementwise(
                _PAIR_F16, "=h,=h,r", [v], dtype=(tl.float16, tl.float16), is_pure=True, pack=1
            )
        else:
            lo, hi = tl.inline_asm_elementwise(
                _PAIR_BF16, "=h,=h,r", [v], dtype=(tl.bfloat16, tl.bfloat16), is_pure=True, pack=1
            )
        return tl.join(lo, hi)
    return tl.join(_nibble(w, e, MAGIC, DT), _nibble(w, e + 4, MAGIC, DT))


@triton.jit
def _dequantized_tile(
    w, BK: tl.constexpr, MAGIC: tl.constexpr, DT: tl.constexpr, ASM: tl.constexpr
):
    """Words [BLOCK_N, 4 (c), BK / 32 (jj)] -> the MMA's weight tile [BLOCK_N, BK] of MAGIC + q
    in `_mma_rows`' column order."""
    w = tl.permute(w, (0, 2, 1))  # [BLOCK_N, JJ, c]
    t = tl.join(
        tl.join(_nibble_pair(w, 0, MAGIC, DT, ASM), _nibble_pair(w, 1, MAGIC, DT, ASM)),
        tl.join(_nibble_pair(w, 2, MAGIC, DT, ASM), _nibble_pair(w, 3, MAGIC, DT, ASM)),
    )
    # [BLOCK_N, JJ, c, e2, e0, e1] -> [BLOCK_N, JJ, e1, e0, c, e2]
    return tl.reshape(tl.permute(t, (0, 1, 5, 4, 2, 3)), [w.shape[0], BK])


@triton.jit
def _mma_rows(BK: tl.constexpr):
    """The input row (within a step) of each of the weight tile's BK columns. Column p = 32 jj
    + 16 e1 + 8 e0 + 2 c + e2 holds nibble e = 4 e2 + 2 e1 + e0 of word c * BK / 32 + jj: a
    16-column slice of the MMA's operand gives thread c of a row columns 2c, 2c + 1, 2c + 8
    and 2c + 9, i.e. whole words c * BK / 32 + jj (its own), not one nibble of many, and each
    32-bit register of it holds nibbles e and e + 4 of one word."""
    JJ: tl.constexpr = BK // 32
    p = tl.arange(0, BK)
    word = JJ * ((p // 2) % 4) + p // 32
    return 8 * word + 4 * (p % 2) + 2 * ((p // 16) % 2) + (p // 8) % 2


@triton.jit
def _mma_step_inputs(
    X,
    S,
    ZS,
    PERM,
    step,
    kp,
    rows,
    row_ok,
    stride_xm,
    stride_s,
    M,
    G: tl.constexpr,
    BK: tl.constexpr,
    HAS_PERM: tl.constexpr,
    SUM: tl.constexpr,
    PAIRS: tl.constexpr,
):
    """Step `step`'s x^T [BK, 16] (its M rows in the weight tile's column order, the rest 0),
    the sums of those rows [16] (SUM; else zeros) and its scale group's scales and scaled
    zeros [BLOCK_N]."""
    k0 = step * BK
    r = tl.arange(0, 16)
    if HAS_PERM:
        src = tl.load(PERM + k0 + kp)
        xt = tl.load(X + r[None, :] * stride_xm + src[:, None], mask=(r < M)[None, :], other=0.0)
        xsum = tl.sum(xt.to(tl.float32), axis=0) if SUM else tl.zeros([16], tl.float32)
    else:  # x's rows read in order (contiguous), then put in the tile's column order
        JJ: tl.constexpr = BK // 32
        k = k0 + tl.arange(0, BK)
        xn = tl.load(X + r[:, None] * stride_xm + k[None, :], mask=(r < M)[:, None], other=0.0)
        xsum = tl.sum(xn.to(tl.float32), axis=1) if SUM else tl.zeros([16], tl.float32)
        xn = tl.reshape(xn, [16, 4, JJ, 2, 2, 2])  # [r, c, jj, e2, e1, e0]
        xt = tl.reshape(tl.permute(xn, (2, 4, 5, 1, 3, 0)), [BK, 16])  # [jj, e1, e0, c, e2, r]
    g = k0 // G
    s, zs = group_scales(S, ZS, g * stride_s + rows, row_ok, PAIRS)
    return xt, xsum, s, zs


@triton.jit
def _int4_mma_kernel(
    X,
    QW,
    S,
    ZS,
    PERM,
    B,
    Y,
    PART,
    COUNT,
    M,
    N,
    K,
    steps_per_split,
    stride_xm,
    stride_qk,
    stride_s,
    stride_ym,
    ROWS: tl.constexpr,
    G: tl.constexpr,
    BK: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SPLIT: tl.constexpr,
    FP16: tl.constexpr,
    ASM: tl.constexpr,
    ONES: tl.constexpr,
    PDL: tl.constexpr,
    PAIRS: tl.constexpr,
):
    nb = tl.program_id(0)
    ks = tl.program_id(1)
    rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    JJ: tl.constexpr = BK // 32
    words = tl.arange(0, 4)[:, None] * JJ + tl.arange(0, JJ)[None, :]  # [4, JJ]: (c, jj)
    w_ptr = QW + words[None, :, :] * stride_qk + rows[:, None, None].to(tl.int64)
    kp = _mma_rows(BK)
    if FP16:
        MAGIC: tl.constexpr = 0x6400
        OFFSET: tl.constexpr = 1024.0
        DT: tl.constexpr = tl.float16
    else:
        MAGIC: tl.constexpr = 0x4300
        OFFSET: tl.constexpr = 128.0
        DT: tl.constexpr = tl.bfloat16
    acc = tl.zeros([BLOCK_N, 16], tl.float32)
    s_begin = ks * steps_per_split
    s_end = tl.minimum(K // BK, s_begin + steps_per_split)
    pdl.wait_for_inputs(PDL)  # released after the loop, not here (pdl.py)
    # x^T and the scales of a step are loaded one step ahead (they do not feed the compiler's
    # pipelined weight loads, and each would otherwise stall its step on a global read)
    xt, xsum, s, zs = _mma_step_inputs(
        X,
        S,
        ZS,
        PERM,
        s_begin,
        kp,
        rows,
        row_ok,
        stride_xm,
        stride_s,
        M,
        G,
        BK,
        HAS_PERM,
        not ONES,
        PAIRS,
    )
    for step in range(s_begin, s_end):
        ahead = tl.minimum(step + 1, s_end - 1)
        xt_next, xsum_next, s_next, zs_next = _mma_step_inputs(
            X,
            S,
            ZS,
            PERM,
            ahead,
            kp,
            rows,
            row_ok,
            stride_xm,
            stride_s,
            M,
            G,
            BK,
            HAS_PERM,
            not ONES,
            PAIRS,
        )
        w = tl.load(w_ptr + (step * BK // 8) * stride_qk, mask=row_ok[:, None, None], other=0)
        a = _dequantized_tile(w, BK, MAGIC, DT, ASM)
        zero = tl.zeros([BLOCK_N, 16], tl.float32)
        d = mma(zero, a, xt, False)  # sum of (MAGIC + q) x
        if ONES:  # sum(x) by a second MMA, on every row of the tile (no cross-warp reduction)
            xsum_t = mma(zero, tl.full([BLOCK_N, BK], 1.0, DT), xt, False)
        else:
            xsum_t = xsum[None, :]
        acc += s[:, None] * d - (zs + OFFSET * s)[:, None] * xsum_t
        xt, xsum, s, zs = xt_next, xsum_next, s_next, zs_next
    pdl.release_dependents(PDL)
    split_k.finish_columns(
        acc, M, Y, stride_ym, B, rows, row_ok, PART, COUNT, nb, ks, HAS_BIAS, SPLIT, BLOCK_N, ROWS
    )


@functools.cache
def _ptx_target() -> bool:
    """Whether kernels compile to NVIDIA PTX here (the inline-assembly dequantization), not for
    AMD GPUs or in Triton's interpreter."""
    if INTERPRET:
        return False
    return triton.runtime.driver.active.get_current_target().backend == "cuda"


def mma_step(group_size: int, k: int) -> int:
    """Input rows per step of the mma kernel (MMA_STEPS), 0 when none divides both the group
    size and K."""
    return next((bk for bk in MMA_STEPS if group_size % bk == 0 and k % bk == 0), 0)


def _mma_launch(x: torch.Tensor, w, launch) -> dict | None:
    """The mma kernel's launch for this call, or None (float32 x, a group size or K no step
    divides, or a launch that asks for the CUDA-core GEMV or has blocks below the MMA's 16
    rows)."""
    cfg = merged(GEMV_INT4_MMA_LAUNCH, launch)
    if not cfg.pop("mma", True) or cfg["block_n"] < 16:
        return None
    if x.dtype not in (torch.bfloat16, torch.float16) or not mma_step(w.group_size, w.k):
        return None
    return cfg


def _gemv_int4_mma(x, w, bias, cfg) -> torch.Tensor:
    m = x.shape[0]
    y = torch.empty((m, w.n), dtype=x.dtype, device=x.device)
    block_n = cfg["block_n"]
    bk = mma_step(w.group_size, w.k)
    blocks = triton.cdiv(w.n, block_n)
    steps = w.k // bk
    split = split_k.choose(cfg["split_k"], blocks * m, steps, x.device, cfg.get("waves", 4))
    scales, zs, stride_s, pairs = w.scale_args()
    _int4_mma_kernel[(blocks, split)](
        x,
        w.qweight,
        scales,
        zs,
        w.perm if w.perm is not None else w.qweight,
        bias if bias is not None else y,
        y,
        split_k.workspace(split, blocks * m, block_n, x.device),
        split_k.counters(x.device) if split > 1 else y,
        m,
        w.n,
        w.k,
        triton.cdiv(steps, split),
        x.stride(0),
        w.qweight.stride(0),
        stride_s,
        y.stride(0),
        ROWS=triton.next_power_of_2(m),  # M's columns unrolled (compiled for 1, 2, 4, 8, 16)
        G=w.group_size,
        BK=bk,
        HAS_PERM=w.perm is not None,
        HAS_BIAS=bias is not None,
        BLOCK_N=block_n,
        SPLIT=split,
        FP16=x.dtype == torch.float16,
        ASM=bool(cfg["asm"]) and _ptx_target(),
        ONES=bool(cfg["ones"]),
        PAIRS=pairs,
        num_warps=warps(cfg["num_warps"], cfg),
        num_stages=cfg["num_stages"],
        **pdl.args(x.device),
    )
    return y


def words_per_step(group_size: int, block_k: int) -> int:
    """KP, word rows per step: block_k / 8 (a power of two); 0 when the group is not a multiple
    of 8 (a word would straddle two groups)."""
    return 0 if group_size % 8 else max(block_k // 8, 1)


def one_group_steps(group_size: int, kp: int) -> bool:
    """Whether every step lies in one scale group (else scales are read per word row)."""
    return group_size % (8 * kp) == 0


def applies(x: torch.Tensor, w, launch=None) -> bool:
    """A few rows, and a group size the step can divide (w: a gemm_int4.Int4Weight)."""
    cfg = merged(GEMV_INT4_LAUNCH, launch)
    if x.dim() != 2 or w.k == 0 or not 0 < x.shape[0] <= MMA_MAX_ROWS:
        return False
    if _mma_launch(x, w, launch) is not None:
        return True
    return x.shape[0] <= MAX_ROWS and words_per_step(w.group_size, cfg["block_k"]) > 0


def gemv_int4(x, w, bias=None, launch=None) -> torch.Tensor:
    """x [M, K] @ the prepared int4 weight `w` (+ bias) -> [M, N] in x.dtype; see `applies`."""
    m = x.shape[0]
    if w.n == 0:
        return torch.empty((m, w.n), dtype=x.dtype, device=x.device)
    x = x if x.stride(-1) == 1 else x.contiguous()
    mma_cfg = _mma_launch(x, w, launch)
    if mma_cfg is not None:
        return _gemv_int4_mma(x, w, bias, mma_cfg)
    cfg = merged(GEMV_INT4_LAUNCH, launch)
    y = torch.empty((m, w.n), dtype=x.dtype, device=x.device)
    block_n = cfg["block_n"]
    kp = words_per_step(w.group_size, cfg["block_k"])
    slots = triton.cdiv(w.n, block_n) * m
    steps = triton.cdiv(w.k, kp * 8)
    split = split_k.choose(cfg["split_k"], slots, steps, x.device)
    per_split = triton.cdiv(steps, split)
    scales, zs, stride_s, pairs = w.scale_args()
    _int4_gemv_kernel[(slots, split)](
        x,
        w.qweight,
        scales,
        zs,
        w.perm if w.perm is not None else w.qweight,
        bias if bias is not None else y,
        y,
        split_k.workspace(split, slots, block_n, x.device),
        split_k.counters(x.device) if split > 1 else y,
        m,
        w.n,
        w.k,
        per_split,
        x.stride(0),
        w.qweight.stride(0),
        stride_s,
        y.stride(0),
        G=w.group_size,
        HAS_PERM=w.perm is not None,
        HAS_BIAS=bias is not None,
        BLOCK_N=block_n,
        KP=kp,
        GATHER=not one_group_steps(w.group_size, kp),
        SPLIT=split,
        PAIRS=pairs,
        num_warps=warps(cfg["num_warps"], launch),
        num_stages=cfg["num_stages"],
        **pdl.args(x.device),
    )
    return y
