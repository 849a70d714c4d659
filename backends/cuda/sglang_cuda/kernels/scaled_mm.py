"""One Triton GEMM for quantized operands with scales: out = (a_q * s_a) @ (b_q * s_b).T + bias.

Shared by gemm.int8 (int8 x int8 -> int32) and gemm.fp8 (e4m3 x e4m3 -> float32). a_q [M, K],
b_q [N, K] (a Linear weight, read as [BLOCK_K, BLOCK_N] tiles of its transpose), out [M, N].

Scale layouts (a_scale, b_scale), all float32:
  epilogue mode (GROUP_K = 0): a_scale is one value ([1]) or one per row ([M]); b_scale one
    value or one per output column ([N]); the integer / fp8 products accumulate over all of
    K and the scales multiply the tile once at the end; fp8 partial sums are promoted to the
    float32 accumulator every BLOCK_K (Hopper's fp8 MMA keeps fewer accumulator bits).
  block mode (GROUP_K > 0): a_scale [M, ceil(K / GROUP_K)] (per token per K-group),
    b_scale [ceil(N / GROUP_N), ceil(K / GROUP_K)] (per weight tile); each BLOCK_K step (a
    divisor of GROUP_K) is accumulated apart and scaled by its group's scales, as SGLang's
    w8a8_block_fp8_matmul does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sglang_cuda.kernels.common import grouped_tile


@triton.jit
def _scaled_mm_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    as_ptr,
    bs_ptr,
    bias_ptr,
    M,
    N,
    K,
    stride_am,
    stride_bn,
    stride_cm,
    stride_as,
    stride_bs,
    A_ROWS: tl.constexpr,
    B_COLS: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    INT: tl.constexpr,
    GROUP_K: tl.constexpr,
    GROUP_N: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid_m, pid_n = grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mmask = rows < M
    nmask = cols < N
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rows.to(tl.int64)[:, None] * stride_am + ks[None, :]
    b_ptrs = b_ptr + cols.to(tl.int64)[None, :] * stride_bn + ks[:, None]
    if INT:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kmask = (k0 + ks) < K
        a = tl.load(a_ptrs, mask=mmask[:, None] & kmask[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=kmask[:, None] & nmask[None, :], other=0.0)
        if GROUP_K > 0:
            part = tl.dot(a, b)
            g = k0 // GROUP_K
            sa = tl.load(as_ptr + rows * stride_as + g, mask=mmask, other=0.0)
            sb = tl.load(bs_ptr + (cols // GROUP_N) * stride_bs + g, mask=nmask, other=0.0)
            acc += part * sa[:, None] * sb[None, :]
        elif INT:
            acc = tl.dot(a, b, acc)
        else:
            # Hopper's fp8 MMA accumulates in fewer than 32 bits; promote to the float32
            # accumulator every BLOCK_K products (DeepSeek-V3's remedy, interval 128).
            acc = tl.dot(a, b, acc, max_num_imprecise_acc=BLOCK_K)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    out = acc.to(tl.float32)
    if GROUP_K == 0:
        if A_ROWS:
            out = out * tl.load(as_ptr + rows, mask=mmask, other=0.0)[:, None]
        else:
            out = out * tl.load(as_ptr)
        if B_COLS:
            out = out * tl.load(bs_ptr + cols, mask=nmask, other=0.0)[None, :]
        else:
            out = out * tl.load(bs_ptr)
    if HAS_BIAS:
        out += tl.load(bias_ptr + cols, mask=nmask, other=0.0).to(tl.float32)[None, :]
    c_ptrs = c_ptr + rows.to(tl.int64)[:, None] * stride_cm + cols[None, :]
    tl.store(c_ptrs, out.to(c_ptr.dtype.element_ty), mask=mmask[:, None] & nmask[None, :])


def _tiles(m: int, group_k: int) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_K): 16-row tiles for decode, larger for prefill; BLOCK_K
    divides the scale group in block mode."""
    block_m = 16 if m <= 16 else 32 if m <= 32 else 64 if m <= 64 else 128
    block_n = 64 if m <= 64 else 128
    block_k = next((b for b in (128, 64, 32) if group_k % b == 0), 0) if group_k else 128
    if not block_k:  # 32: the smallest K of an fp8 MMA
        raise ValueError(f"scale group {group_k} along K is not a multiple of 32")
    return block_m, block_n, block_k


def scaled_mm(
    a_q: torch.Tensor,
    b_q: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
    block: tuple[int, int] | None = None,
) -> torch.Tensor:
    """a_q [M, K], b_q [N, K] (int8 or float8_e4m3fn, unit stride along K); scales float32
    (see the module docstring); block=(GROUP_N, GROUP_K) selects block mode."""
    m, k = a_q.shape
    n = b_q.shape[0]
    out = torch.empty((m, n), dtype=out_dtype, device=a_q.device)
    if m == 0 or n == 0:
        return out
    if k == 0:
        return out.zero_() if bias is None else out.copy_(bias.expand(m, n))
    a_q = a_q if a_q.stride(-1) == 1 else a_q.contiguous()
    b_q = b_q if b_q.stride(-1) == 1 else b_q.contiguous()
    a_scale = a_scale.float().contiguous()
    b_scale = b_scale.float().contiguous()
    group_n, group_k = block if block is not None else (0, 0)
    bm, bn, bk = _tiles(m, group_k)
    grid = (triton.cdiv(m, bm) * triton.cdiv(n, bn),)
    _scaled_mm_kernel[grid](
        a_q,
        b_q,
        out,
        a_scale,
        b_scale,
        bias if bias is not None else out,
        m,
        n,
        k,
        a_q.stride(0),
        b_q.stride(0),
        out.stride(0),
        a_scale.stride(0) if a_scale.dim() == 2 else 0,
        b_scale.stride(0) if b_scale.dim() == 2 else 0,
        A_ROWS=a_scale.numel() > 1,
        B_COLS=b_scale.numel() > 1,  # a [1] scale: the same
        HAS_BIAS=bias is not None,
        INT=a_q.dtype == torch.int8,
        GROUP_K=group_k,
        GROUP_N=group_n or 1,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
        GROUP_M=8,
        num_warps=4 if bm * bn <= 4096 else 8,
    )
    return out
