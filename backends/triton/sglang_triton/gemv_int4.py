"""gemm.int4 for a few rows (decode, M <= MAX_ROWS): a GEMV over gemm_int4.prepare's layout.

The weight is int32 [ceil(K/8), N] packed along K (nibble i of word row r is input row 8r + i),
with float32 scales and zero-times-scale [K/G, N] (gemm_int4's module docstring). At M = 1 the
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
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sglang_triton import split_k
from sglang_triton.target import merged, warps

MAX_ROWS = 4
"""Rows of x up to which gemm.int4 takes this kernel (more: the tiled W4A16 GEMM)."""

GEMV_INT4_LAUNCH = {
    "block_n": 128,
    "block_k": 128,
    "num_warps": 4,
    "num_stages": 3,
    "split_k": "auto",
}
"""Launch parameters; block_k: input rows per step (a power of two); split_k: programs per
output block along K (a number, or "auto": split_k.choose). The fastest of 7 launches on an
H200 (benchmarks/bench_decode_gemv.py: 823-939 GB/s on the Llama-8B shapes, the 16-wide
unsplit launch 281-306): 512-byte runs of each word row, one scale group per step."""


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
):
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
            s = tl.load(S + g_off, mask=g_ok, other=0.0)[:, None, :]
            zs = tl.load(ZS + g_off, mask=g_ok, other=0.0)[:, None, :]
        else:  # the whole step in one group: one row
            g_off = (k0 // G) * stride_s + cols
            s = tl.load(S + g_off, mask=col_ok, other=0.0)[None, None, :]
            zs = tl.load(ZS + g_off, mask=col_ok, other=0.0)[None, None, :]
        acc += (q * s - zs) * x[:, :, None]
    y = tl.sum(tl.sum(acc, axis=0), axis=0)
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
    return (
        x.dim() == 2
        and 0 < x.shape[0] <= MAX_ROWS
        and w.k > 0
        and words_per_step(w.group_size, cfg["block_k"]) > 0
    )


def gemv_int4(x, w, bias=None, launch=None) -> torch.Tensor:
    """x [M, K] @ the prepared int4 weight `w` (+ bias) -> [M, N] in x.dtype; see `applies`."""
    cfg = merged(GEMV_INT4_LAUNCH, launch)
    m = x.shape[0]
    y = torch.empty((m, w.n), dtype=x.dtype, device=x.device)
    if w.n == 0:
        return y
    x = x if x.stride(-1) == 1 else x.contiguous()
    block_n = cfg["block_n"]
    kp = words_per_step(w.group_size, cfg["block_k"])
    slots = triton.cdiv(w.n, block_n) * m
    steps = triton.cdiv(w.k, kp * 8)
    split = split_k.choose(cfg["split_k"], slots, steps, x.device)
    per_split = triton.cdiv(steps, split)
    _int4_gemv_kernel[(slots, split)](
        x,
        w.qweight,
        w.scales,
        w.zs,
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
        w.scales.stride(0),
        y.stride(0),
        G=w.group_size,
        HAS_PERM=w.perm is not None,
        HAS_BIAS=bias is not None,
        BLOCK_N=block_n,
        KP=kp,
        GATHER=not one_group_steps(w.group_size, kp),
        SPLIT=split,
        num_warps=warps(cfg["num_warps"], launch),
        num_stages=cfg["num_stages"],
    )
    return y
