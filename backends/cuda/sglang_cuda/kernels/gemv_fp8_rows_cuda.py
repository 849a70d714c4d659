"""gemm.fp8 with 128x128 block scales at one row of 16-bit x (batch-1 decode): a CUDA C++ GEMV on
the CUDA cores (csrc/gemv_fp8_rows.cu, compiled by NVRTC: sglang_cuda.nvrtc) that quantizes x
itself, per 128-column group as the spec says, so the call is one launch.

Why: the default decode path for block FP8 (gemv_fp8's "mma" launch) is two launches, x's
quantization (gemv_fp8.quantize_token_group) and the tensor-core GEMV, and the GEMV drains its
MMA every 128 columns to apply the two scales. On the H200 a Llama-3.1-8B FP8 block step was
2.96 ms (issue 14's target 2.4) with its GEMVs at ~3.3 TB/s and the 128 quantization launches
at ~0.175 ms of the step; this kernel reads each weight byte once into packed f16 FMAs and
needs no MMA.

Falls back (None from `plan`) for more than one row, float32 x, other block sizes, K not a
multiple of 128, misaligned or non-contiguous rows, where NVRTC or a GPU is missing, and while
torch.compile traces.
"""

from __future__ import annotations

import ctypes
import functools

import torch
from sglang_triton import pdl

from sglang_cuda import nvrtc
from sglang_cuda.kernels import gemv_dense_cuda

GEMV_FP8_ROWS_CUDA_LAUNCH = {
    "enabled": True,
    "rows": 4,
    "warps": "auto",
    "unroll": 1,
    "cvt": 1,
    "min_blocks": 2,
    "early": False,
}
"""enabled: the A/B switch (on: in Llama-3.1-8B FP8-block's batch-1 decode graph on an H100 the
step fell from 3.684 to 3.249 ms against quantizing x then Triton's wgmma GEMV, 3.217 with
rows 4; cvt 0 3.352, early 3.308, unroll 2 3.321, 4 warps 3.330, min_blocks 1 3.256;
docs/benchmarks.md); rows: output rows a block, a power of two up to 16 (4, as timed; "auto":
8, fewer while that leaves the GPU short of blocks); warps: a block's warps,
which split K ("auto": about `unroll` 512-column steps each, 1 to 8); unroll: steps whose loads
a warp issues together; cvt: how weight bytes become f16 pairs (csrc/gemv_fp8_rows.cu: 1 the
F2FP conversion, 0 integer operations); min_blocks: __launch_bounds__' blocks a processor must
hold (2: at most 128 registers at 8 warps, no spills at either cvt in the sm_90a build, and
every load of a step still issued before its first product; 1: 146 / 211 registers, one
block of 8 warps a processor); early: a warp's first step group of weights and scales loaded
before griddepcontrol.wait (they are constants of the step; x is read after it), so under PDL
the GEMV's first loads overlap the previous kernel's tail."""

SOURCE = "gemv_fp8_rows.cu"
STEP = 512  # columns a warp step covers (32 lanes x 16 bytes)
GROUP = 128


def launch_shape(n: int, k: int, processors: int, cfg: dict) -> tuple[int, int, int]:
    """(rows a block, warps a block, unroll): the dense GEMV's rule with 512-column steps."""
    return gemv_dense_cuda.launch_shape(n, k, processors, cfg, step=STEP)


@functools.cache
def _has_fp8_conversions(index: int) -> bool:
    return torch.cuda.get_device_capability(index) >= (8, 9)  # cvt ... e4m3x2: sm_89 and up


def plan(x, weight, ws, block_size, launch=None) -> dict | None:
    """The launch for gemm.fp8 (scheme block) of x with this weight, or None when this kernel
    does not apply (module docstring). ws: the weight's float32 block scales."""
    cfg = {**GEMV_FP8_ROWS_CUDA_LAUNCH, **(launch or {})}
    if not cfg["enabled"] or x.device.type != "cuda" or torch.compiler.is_compiling():
        return None
    if x.dim() != 2 or x.shape[0] != 1 or x.dtype not in (torch.bfloat16, torch.float16):
        return None
    if tuple(block_size) != (GROUP, GROUP) or weight.dim() != 2:
        return None
    n, k = weight.shape
    if weight.dtype != torch.float8_e4m3fn or n == 0 or k % GROUP or x.shape[1] != k:
        return None
    if weight.stride(1) != 1 or weight.stride(0) % 16 or x.stride(1) != 1:
        return None
    if ws.dtype != torch.float32 or ws.dim() != 2 or ws.stride(1) != 1:
        return None
    if ws.shape[0] < -(-n // GROUP) or ws.shape[1] < k // GROUP:
        return None
    if not nvrtc.aligned(x, weight) or nvrtc.available() is not None:
        return None
    index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    if not _has_fp8_conversions(index):
        return None
    rows, warps, unroll = launch_shape(n, k, nvrtc.processors(index), cfg)
    if rows not in (1, 2, 4, 8, 16) or rows > 32 * warps:
        raise ValueError(
            f"rows must be a power of two up to 16 (they share a scale row), not {rows}"
        )
    return {
        "rows": rows,
        "warps": warps,
        "unroll": unroll,
        "cvt": int(cfg["cvt"]),
        "min_blocks": int(cfg["min_blocks"]),
        "early": int(bool(cfg["early"])),
    }


def gemv_fp8_rows(x, weight, ws, bias, cfg, y=None) -> torch.Tensor:
    """gemm.fp8 (scheme block, 128x128) of x [1, K] and weight [N, K] e4m3 with float32 block
    scales ws (+ bias) -> [1, N] in x.dtype (into y when given: contiguous); cfg from `plan`."""
    n, k = weight.shape
    y = torch.empty((1, n), dtype=x.dtype, device=x.device) if y is None else y
    defines = (
        ("FP16", int(x.dtype == torch.float16)),
        ("ROWS", cfg["rows"]),
        ("WARPS", cfg["warps"]),
        ("UNROLL", cfg["unroll"]),
        ("CVT", cfg["cvt"]),
        ("MIN_BLOCKS", cfg["min_blocks"]),
        ("EARLY", cfg["early"]),
    )
    kern = nvrtc.kernel(SOURCE, "gemv_fp8_rows", x.device, defines)
    if bias is not None:
        bias = bias.to(x.dtype).contiguous()
    args = [
        ctypes.c_void_p(x.data_ptr()),
        ctypes.c_void_p(weight.data_ptr()),
        ctypes.c_void_p(ws.data_ptr()),
        ctypes.c_void_p(bias.data_ptr() if bias is not None else 0),
        ctypes.c_void_p(y.data_ptr()),
        ctypes.c_int(n),
        ctypes.c_int(k),
        ctypes.c_longlong(weight.stride(0)),
        ctypes.c_longlong(ws.stride(0)),
        ctypes.c_int(int(bias is not None)),
    ]
    blocks = -(-n // cfg["rows"])
    stream = torch.cuda.current_stream(x.device).cuda_stream
    kern.launch((blocks, 1, 1), (32 * cfg["warps"], 1, 1), args, stream, pdl.enabled(x.device))
    return y
