"""gemm.fp8 with 128x128 block scales at 1-8 rows of 16-bit x (decode): the tensor-core GEMV in
CUDA C++ (csrc/gemv_fp8_block_mma.cu, compiled by NVRTC: sglang_cuda.nvrtc), after x is
quantized per token per 128-group exactly as the spec says (gemv_fp8.quantize_token_group).

The e4m3 weight's 16-byte loads are the m16n8k32 MMA's operands as they stand (the MMA's k
slots of a lane are taken to be its 16 loaded columns, the same for x's codes), so the loop is
loads and MMAs: on sm_90 ptxas runs the e4m3 mma.sync as f16 MMAs after converting the bytes
(F2FP), ~28 warp-instructions per KiB against the Triton kernel's 57. Falls back (None from
`plan`) for other block sizes, K not a multiple of 128, float32 x, misaligned tensors, and
while torch.compile traces."""

from __future__ import annotations

import ctypes

import torch
from sglang_triton import pdl

from sglang_cuda import nvrtc

MAX_ROWS = 8
GEMV_FP8_CUDA_LAUNCH = {"enabled": False, "warps": "auto"}
"""enabled: False keeps the Triton kernels (an A/B switch); warps: a block's warps, which split
K (a block owns 32 rows of W), or "auto" (nvrtc.block_warps)."""

SOURCE = "gemv_fp8_block_mma.cu"


def plan(x, weight, ws, block_size, launch=None) -> dict | None:
    """The launch for this call, or None when the kernel does not apply (module docstring)."""
    cfg = {**GEMV_FP8_CUDA_LAUNCH, **(launch or {})}
    if not cfg["enabled"] or x.device.type != "cuda" or torch.compiler.is_compiling():
        return None
    if x.dtype not in (torch.bfloat16, torch.float16) or x.dim() != 2:
        return None
    m, k = x.shape
    n = weight.shape[0]
    if tuple(block_size) != (128, 128) or not 0 < m <= MAX_ROWS or k % 128 or n == 0:
        return None
    if weight.dtype != torch.float8_e4m3fn or weight.shape[1] != k:
        return None
    if weight.stride(1) != 1 or weight.stride(0) % 16 or not nvrtc.aligned(weight):
        return None
    if ws.dim() != 2 or ws.shape[0] < -(-n // 128) or ws.shape[1] < k // 128 or ws.stride(1) != 1:
        return None
    if nvrtc.available() is not None:
        return None
    return cfg


def gemv_fp8_block(xq, xs, weight, ws, bias, y, cfg) -> torch.Tensor:
    """y [M, N] = the block-scaled product of x's codes xq [M, K] (scales xs [M, K/128], from
    quantize_token_group) and the weight (+ bias); cfg from `plan`."""
    m, k = xq.shape
    n = weight.shape[0]
    blocks = (n + 31) // 32
    warps = nvrtc.warps_for(cfg["warps"], blocks, xq.device)
    fp16 = int(y.dtype == torch.float16)
    kern = nvrtc.kernel(
        SOURCE, "gemv_fp8_block_mma", xq.device, (("WARPS", int(warps)), ("FP16", fp16))
    )
    if bias is not None:
        bias = bias.to(y.dtype).contiguous()
    xs = xs.float()
    args = [
        ctypes.c_void_p(xq.data_ptr()),
        ctypes.c_void_p(xs.data_ptr()),
        ctypes.c_void_p(weight.data_ptr()),
        ctypes.c_void_p(ws.data_ptr()),
        ctypes.c_void_p(bias.data_ptr() if bias is not None else 0),
        ctypes.c_void_p(y.data_ptr()),
        ctypes.c_int(m),
        ctypes.c_int(n),
        ctypes.c_int(k),
        ctypes.c_longlong(xq.stride(0)),
        ctypes.c_longlong(xs.stride(0)),
        ctypes.c_longlong(weight.stride(0)),
        ctypes.c_longlong(ws.stride(0)),
        ctypes.c_longlong(y.stride(0)),
        ctypes.c_int(int(bias is not None)),
    ]
    stream = torch.cuda.current_stream(xq.device).cuda_stream
    kern.launch((blocks, 1, 1), (32 * int(warps), 1, 1), args, stream, pdl.enabled(xq.device))
    return y
