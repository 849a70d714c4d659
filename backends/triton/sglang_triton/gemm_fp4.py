"""gemm.fp4 (W4A16: NVFP4 and MXFP4 weights, 16-bit activations) on GPUs without FP4
tensor cores (Hopper, Ampere): the weight is dequantized tile by tile inside a Triton GEMM.

Layouts are the spec's (sglang.ops.quant.fp4), read as they are stored: weight uint8 [N, K/2]
(low nibble = even k), NVFP4 scales float8_e4m3fn [N, K/16] (read as raw bytes) times a
float32 global scale, MXFP4 scales e8m0 uint8 [N, K/32]. All three codes are decoded with
integer arithmetic and a bitcast to float32, so the kernel needs no fp8 support from the GPU:

  e2m1  sign s, exponent e (2 bits), mantissa m (1 bit): e = 0 -> m / 2, else 2^(e-1) (1 + m/2)
  e4m3  sign, exponent e (4 bits, bias 7), mantissa m (3 bits): e = 0 -> m 2^-9, else the
        float32 with exponent field e + 120 and mantissa m << 20
  e8m0  e -> 2^(e - 127): the float32 exponent field e (e = 0: 2^-127, a subnormal; 255: NaN)

Each [BLOCK_K, BLOCK_N] tile becomes e2m1 * scale (* global) in float32, rounded to x.dtype
for tl.dot with float32 accumulation.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sglang_triton.common import grouped_tile, mma
from sglang_triton.fp4_codes import e2m1, e4m3, e8m0
from sglang_triton.target import warps

NVFP4, MXFP4 = 0, 1


@triton.jit
def _w4a16_fp4_kernel(
    x_ptr,
    w_ptr,
    s_ptr,
    gs_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_wn,
    stride_sn,
    stride_om,
    FORMAT: tl.constexpr,
    SCALE_BLOCK: tl.constexpr,
    HAS_GLOBAL: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    IEEE: tl.constexpr,
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
    x_rows = x_ptr + rows.to(tl.int64)[:, None] * stride_xm
    w_cols = w_ptr + cols.to(tl.int64)[None, :] * stride_wn
    s_cols = s_ptr + cols.to(tl.int64)[None, :] * stride_sn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + tl.arange(0, BLOCK_K)
        kmask = kk < K
        a = tl.load(x_rows + kk[None, :], mask=mmask[:, None] & kmask[None, :], other=0.0)
        wmask = kmask[:, None] & nmask[None, :]
        byte = tl.load(w_cols + (kk // 2)[:, None], mask=wmask, other=0).to(tl.int32)
        code = (byte >> ((kk % 2) * 4)[:, None]) & 0xF
        sbyte = tl.load(s_cols + (kk // SCALE_BLOCK)[:, None], mask=wmask, other=0).to(tl.int32)
        if FORMAT == 0:
            scale = e4m3(sbyte)
        else:
            scale = e8m0(sbyte)
        w = e2m1(code) * scale
        if HAS_GLOBAL:
            w = w * tl.load(gs_ptr)
        acc = mma(acc, a, w.to(a.dtype), IEEE)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + cols, mask=nmask, other=0.0).to(tl.float32)[None, :]
    o_ptrs = out_ptr + rows.to(tl.int64)[:, None] * stride_om + cols[None, :]
    tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mmask[:, None] & nmask[None, :])


def fp4(x, weight, weight_scale, format, global_scale=None, bias=None, launch=None):
    if format not in ("nvfp4", "mxfp4"):
        raise ValueError(f"format must be nvfp4 or mxfp4, got {format!r}")
    m, k = x.shape
    n = weight.shape[0]
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m == 0 or n == 0:
        return out
    x = x if x.stride(-1) == 1 else x.contiguous()
    weight = weight if weight.stride(-1) == 1 else weight.contiguous()
    scales = weight_scale.contiguous().view(torch.uint8)  # e4m3 or e8m0 bytes
    nv = format == "nvfp4"
    has_global = nv and global_scale is not None
    gs = global_scale.float().reshape(1) if has_global else scales
    block_m = 16 if m <= 16 else 32 if m <= 32 else 64
    block_n = 32 if m <= 16 else 64 if m <= 64 else 128
    grid = (triton.cdiv(m, block_m) * triton.cdiv(n, block_n),)
    _w4a16_fp4_kernel[grid](
        x,
        weight,
        scales,
        gs,
        bias if bias is not None else out,
        out,
        m,
        n,
        k,
        x.stride(0),
        weight.stride(0),
        scales.stride(0),
        out.stride(0),
        FORMAT=NVFP4 if nv else MXFP4,
        SCALE_BLOCK=16 if nv else 32,
        HAS_GLOBAL=has_global,
        HAS_BIAS=bias is not None,
        IEEE=x.dtype == torch.float32,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=64,
        GROUP_M=8,
        num_warps=warps(4, launch),
    )
    return out


def register(registry, target) -> None:
    fn = target.bind(fp4, "gemm_fp4")
    registry.register("gemm.fp4", fn, name=target.name("triton_w4a16_fp4"))
