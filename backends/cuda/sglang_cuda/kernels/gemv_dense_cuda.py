"""gemm.dense at one row of 16-bit x (batch-1 decode): a CUDA C++ GEMV (csrc/gemv_dense.cu,
compiled by NVRTC: sglang_cuda.nvrtc) ahead of the Triton GEMV (sglang_triton.gemv).

Why: Qwen3-30B-A3B's attention weights are small (qkv 21 MB, o 17 MB, router 0.5 MB in bf16),
and on an H100 the Triton GEMV read them at ~1.85 TB/s inside the decode graph (8.2 us a call
on the profile, docs/benchmarks.md): a batch-1 GEMV of that size is its ramp and its loads'
latency more than its bytes. Here each warp issues all of a step group's loads at once (ROWS
rows x UNROLL x 16 bytes a lane) and a block reduces once through shared memory.

Falls back (returns None from `plan`) for more than one row, float32, K not a multiple of 8,
W's rows not 16-byte aligned or not contiguous, where NVRTC or a GPU is missing, and while
torch.compile traces.
"""

from __future__ import annotations

import ctypes

import torch
from sglang_triton import pdl

from sglang_cuda import nvrtc

GEMV_DENSE_CUDA_LAUNCH = {
    "enabled": True,
    "max_elements": 12 << 20,
    "rows": "auto",
    "warps": "auto",
    "unroll": 1,
    "early": False,
    "rms": True,
}
"""enabled: the A/B switch; max_elements: the largest weight (N x K) it takes, larger ones keep
the Triton GEMV; rows: output rows a block ("auto": 8, fewer while that leaves the GPU short of
blocks); warps: a block's warps, which split K ("auto": enough that each has about `unroll`
256-element steps, 1 to 8); unroll: steps whose loads a warp issues together; early: a warp's
first step group of weights loaded before griddepcontrol.wait (weights are constants of the
step; x is read after it), so under PDL a small GEMV's first loads overlap the previous
kernel's tail (off until timed on a GPU); rms: gemm.dense_rms (a decoder layer's RMS norm and
the projection after it) as this GEMV with the norm inside (gemv_dense_rms: the row's sum of
squares beside the products, its reciprocal RMS applied to the sums): on, since in Qwen3-30B-
A3B's decode graph on an H100 it took the step from 2.986 to 2.858 ms (early too: 2.854, within
noise, so early stays off); off, the norm and the GEMV are two launches.

Timed in the model's batch-1 decode graph on an H100 (benchmarks/sweep_decode_launch.py,
docs/benchmarks.md): Qwen3-30B-A3B bf16 3.327 -> 3.161 ms a step with unroll 1 (3.180 with 2,
3.227 with 4; rows 2 or 8 warps within 0.1%), scheduler-loop ITL 3.372 -> 3.220. On Llama-8B's
LM head (525M elements) it was within 0.4% of the Triton GEMV, so weights past max_elements
(the 8B's and the LM heads) keep the Triton kernel, whose launch was tuned on them."""

SOURCE = "gemv_dense.cu"
STEP = 256  # elements of K a warp step covers (32 lanes x 8)


def _pow2_floor(v: int) -> int:
    return 1 << max(0, v.bit_length() - 1)


def launch_shape(
    n: int, k: int, processors: int, cfg: dict, step: int = STEP
) -> tuple[int, int, int]:
    """(rows a block, warps a block, unroll) for an N x K weight on `processors` SMs, a warp
    step covering `step` elements of K (gemv_fp8_rows_cuda's steps are 512 wide)."""
    unroll = int(cfg["unroll"])
    rows = cfg["rows"]
    if rows == "auto":
        rows = 8
        while rows > 1 and -(-n // rows) < 2 * processors:
            rows //= 2
    warps = cfg["warps"]
    if warps == "auto":
        steps = -(-k // step)
        warps = min(8, _pow2_floor(max(1, steps // unroll)))
    return int(rows), int(warps), unroll


def plan(x: torch.Tensor, weight: torch.Tensor, launch=None) -> dict | None:
    """The launch for x @ weight.T here, or None when this kernel does not apply."""
    cfg = {**GEMV_DENSE_CUDA_LAUNCH, **(launch or {})}
    if not cfg["enabled"] or x.device.type != "cuda" or torch.compiler.is_compiling():
        return None
    if x.dim() != 2 or x.shape[0] != 1 or x.dtype not in (torch.bfloat16, torch.float16):
        return None
    if weight.dim() != 2 or weight.dtype != x.dtype or weight.device != x.device:
        return None
    n, k = weight.shape
    if n * k > cfg["max_elements"]:
        return None
    if n == 0 or k == 0 or k % 8 or x.shape[1] != k or weight.stride(1) != 1 or x.stride(1) != 1:
        return None
    if weight.stride(0) % 8 or not nvrtc.aligned(x, weight) or nvrtc.available() is not None:
        return None
    index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    rows, warps, unroll = launch_shape(n, k, nvrtc.processors(index), cfg)
    if rows > 32 * warps:  # a block's first `rows` threads store its outputs
        raise ValueError(f"dense GEMV launch: {rows} rows a block need at least {rows} threads")
    return {"rows": rows, "warps": warps, "unroll": unroll, "early": int(bool(cfg["early"]))}


def _defines(x: torch.Tensor, cfg: dict) -> tuple:
    return (
        ("FP16", int(x.dtype == torch.float16)),
        ("ROWS", cfg["rows"]),
        ("WARPS", cfg["warps"]),
        ("UNROLL", cfg["unroll"]),
        ("EARLY", cfg.get("early", 0)),
    )


def gemv_dense(x: torch.Tensor, weight: torch.Tensor, bias, cfg: dict) -> torch.Tensor:
    """x [1, K] @ weight [N, K].T (+ bias) -> [1, N] in x.dtype; cfg from `plan`."""
    n, k = weight.shape
    y = torch.empty((1, n), dtype=x.dtype, device=x.device)
    kern = nvrtc.kernel(SOURCE, "gemv_dense", x.device, _defines(x, cfg))
    if bias is not None:
        bias = bias.to(x.dtype).contiguous()
    args = [
        ctypes.c_void_p(x.data_ptr()),
        ctypes.c_void_p(weight.data_ptr()),
        ctypes.c_void_p(bias.data_ptr() if bias is not None else 0),
        ctypes.c_void_p(y.data_ptr()),
        ctypes.c_int(n),
        ctypes.c_int(k),
        ctypes.c_longlong(weight.stride(0)),
        ctypes.c_int(int(bias is not None)),
    ]
    blocks = -(-n // cfg["rows"])
    stream = torch.cuda.current_stream(x.device).cuda_stream
    kern.launch((blocks, 1, 1), (32 * cfg["warps"], 1, 1), args, stream, pdl.enabled(x.device))
    return y


def plan_rms(x, norm_weight, weight, residual=None, launch=None) -> dict | None:
    """`plan` for gemm.dense_rms: also the norm's weight [K] and the residual [1, K] in x's
    dtype, contiguous and 16-byte aligned."""
    cfg = plan(x, weight, launch)
    return cfg if cfg is not None and norm_inputs_fit(x, norm_weight, residual) else None


def norm_flags(bias, residual, h, normed) -> int:
    """The norm-fused GEMV kernels' flags argument: 1 bias, 2 residual, 4 h_out, 8 normed_out
    (each set where that tensor is given; gemv_int4_cuda shares it)."""
    flags = int(bias is not None) | (2 if residual is not None else 0)
    return flags | (4 if h is not None else 0) | (8 if normed is not None else 0)


def pointer(t) -> ctypes.c_void_p:
    """A kernel argument for an optional tensor: its data pointer, or null for None."""
    return ctypes.c_void_p(t.data_ptr() if t is not None else 0)


def norm_inputs_fit(x, norm_weight, residual) -> bool:
    """Whether a norm-fused GEMV's norm inputs are as its kernels read them: the norm's weight
    [K] and the residual (None, or x's shape) in x's dtype and device, contiguous along K and
    16-byte aligned (gemv_int4_cuda.plan_rms shares it)."""
    k = x.shape[1]
    if norm_weight.shape != (k,) or norm_weight.dtype != x.dtype or norm_weight.stride(0) != 1:
        return False
    if not nvrtc.aligned(norm_weight) or norm_weight.device != x.device:
        return False
    if residual is None:
        return True
    if residual.shape != x.shape or residual.dtype != x.dtype or residual.stride(1) != 1:
        return False
    return nvrtc.aligned(residual) and residual.device == x.device


def gemv_dense_rms(x, norm_weight, weight, eps, bias, residual, return_normed, cfg):
    """gemm.dense_rms at one row (the spec's returns); cfg from `plan_rms`."""
    n, k = weight.shape
    y = torch.empty((1, n), dtype=x.dtype, device=x.device)
    h = torch.empty_like(x) if residual is not None else None
    normed = torch.empty_like(x) if return_normed else None
    kern = nvrtc.kernel(SOURCE, "gemv_dense_rms", x.device, _defines(x, cfg))
    if bias is not None:
        bias = bias.to(x.dtype).contiguous()
    flags = norm_flags(bias, residual, h, normed)
    ptr = pointer

    args = [
        ptr(x),
        ptr(residual),
        ptr(norm_weight),
        ctypes.c_float(eps),
        ptr(weight),
        ptr(bias),
        ptr(y),
        ptr(h),
        ptr(normed),
        ctypes.c_int(n),
        ctypes.c_int(k),
        ctypes.c_longlong(weight.stride(0)),
        ctypes.c_int(flags),
    ]
    blocks = -(-n // cfg["rows"])
    stream = torch.cuda.current_stream(x.device).cuda_stream
    kern.launch((blocks, 1, 1), (32 * cfg["warps"], 1, 1), args, stream, pdl.enabled(x.device))
    out = [y] + ([h] if h is not None else []) + ([normed] if normed is not None else [])
    return out[0] if len(out) == 1 else tuple(out)
