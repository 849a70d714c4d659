"""gemm.int4 at one row of 16-bit x (batch-1 decode) on the CUDA cores: a CUDA C++ GEMV
(csrc/gemv_int4_fma.cu, compiled by NVRTC: sglang_cuda.nvrtc) over the layout of
sglang_triton.gemm_int4.prepare, the one the tensor-core kernel (gemv_int4_cuda) reads.

Why: the tensor-core kernel holds 126 registers a thread, so a processor runs 16 of its warps,
and it streamed the 8B's AWQ weights at 1.3-2.8 TB/s on the H200 (issue 14 asks the step for
1.9 ms, the weights near 3.5 TB/s). Here x is staged once a block as the f16 pairs each nibble
mask meets (a nibble's bits are an exact f16 subnormal: csrc's header), a weight word becomes
four packed f16 FMAs with one shift and four masks, and a thread holds about 80 registers, most
of them its weights in flight: 24 warps a processor.

Falls back (None from `plan`) for more than one row, float32 x, GPTQ act-order (x read through
perm), N not a multiple of 4, a chunking other than 32, 64 or 128 input rows (group sizes
32, 64, 128 and multiples of 128 that gemv_int4_cuda chunks), x larger than shared memory takes,
misaligned tensors, and while torch.compile traces; gemm_int4 then asks the tensor-core kernel.
"""

from __future__ import annotations

import ctypes

import torch
from sglang_triton import pdl

from sglang_cuda import nvrtc
from sglang_cuda.kernels import gemv_int4_cuda

GEMV_INT4_FMA_LAUNCH = {
    "enabled": False,
    "warps": "auto",
    "per_sm": 24,
    "buffers": 2,
    "early": False,
    "min_warps": 2,
    "center": "auto",
}
"""enabled: the A/B switch. Off: correct (its tests and AWQ / GPTQ models through it passed on an
H100) but no faster than the tensor-core kernel it would replace. On an H100 (docs/benchmarks.md,
2026-12-06): the 8B's four AWQ shapes 55.9-58.3 us a layer at one row against the tensor-core
kernel's 54.3-55.7 (earlier calls); in the AWQ 8B's batch-1 graph 2.382 ms a step with "early"
against 2.380 (2.487 without "early", 2.433-2.57 at other launches). Nsight: 31% occupancy
(80 registers) against 20% (126), yet 66% of DRAM bandwidth against 70%: both wait on their
loads (long-scoreboard stalls 10.8 against 6.0 cycles an instruction), so more warps a
processor did not raise the bytes the DRAM delivers. warps: a block's
warps, which split K by chunks (a block owns 32 output columns), or "auto" (`block_warps`);
per_sm: the warps a processor should hold, which caps the registers a thread (65536 / (32 x
per_sm): 85 at 24, where ptxas builds the 2-buffer loop in 80 without spills for sm_90a) and
sets "auto"; buffers: chunks of weights a warp keeps in registers (2 or 3: 3 spills under the
cap of 24 warps); early: a warp's first chunks of weights and scales loaded before
griddepcontrol.wait (constants of the step: pdl.py); min_warps: the fewest warps "auto" gives;
center: the codes as q - 8 (four more instructions a word, f16 sums half as large; csrc's
header): "auto" for float16 x, whose tolerance needs it (CPU emulation: relative RMS 5.9e-4
against 8.5e-4 allowed; uncentred 1.6e-3), not for bfloat16 (2.2e-3 against 6.8e-3)."""

SOURCE = "gemv_int4_fma.cu"
SMEM_LIMIT = 48 << 10
"""Shared memory a block may use without opting in: staged x (2 bytes an input row), 20 bytes a
chunk for its scale and sums, and the warps' partial sums (static, 128 bytes a warp)."""


def block_warps(blocks: int, processors: int, per_sm: int, least: int) -> tuple[int, int]:
    """(warps a block, blocks a processor for __launch_bounds__): the most warps a block with
    which the grid fits in one wave of `per_sm` warps a processor (resident warps the more the
    better: the kernel is bound by loads in flight), else `least`."""
    best = None
    for warps in range(max(1, least), min(32, per_sm) + 1):
        per_proc = per_sm // warps
        if per_proc and blocks <= per_proc * processors:
            best = warps
    warps = best if best is not None else max(1, least)
    return warps, max(1, per_sm // warps)


def plan(x: torch.Tensor, w, launch=None) -> dict | None:
    """The launch for x @ w here, or None when this kernel does not apply (module docstring)."""
    cfg = {**GEMV_INT4_FMA_LAUNCH, **(launch or {})}
    if int(cfg["buffers"]) not in (2, 3):
        raise ValueError(f"buffers: 2 or 3, got {cfg['buffers']!r}")
    if not 1 <= int(cfg["per_sm"]) <= 64:
        raise ValueError(f"per_sm: 1 to 64 warps a processor, got {cfg['per_sm']!r}")
    if cfg["center"] not in ("auto", True, False, 0, 1):
        raise ValueError(f"center: 'auto', True or False, got {cfg['center']!r}")
    if not cfg["enabled"] or x.device.type != "cuda" or torch.compiler.is_compiling():
        return None
    if x.dtype not in (torch.bfloat16, torch.float16) or x.dim() != 2 or x.shape[0] != 1:
        return None
    k = x.shape[1]
    if w.perm is not None or w.n % 4 or w.n == 0 or k != w.k:
        return None
    chunk = gemv_int4_cuda._chunk_rows(w.group_size, w.k)
    if chunk is None or chunk[0] not in (32, 64, 128) or nvrtc.available() is not None:
        return None
    steps = chunk[0] // 32
    if x.stride(1) != 1 or not nvrtc.aligned(x):
        return None
    qw = w.qweight
    if qw.stride(1) != 1 or qw.stride(0) % 4 or not nvrtc.aligned(qw):
        return None
    scales = gemv_int4_cuda.scale_args(w)
    if scales is None:
        return None
    index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    blocks = (w.n + 31) // 32
    per_sm = int(cfg["per_sm"])
    if cfg["warps"] == "auto":
        warps, min_blocks = block_warps(
            blocks, nvrtc.processors(index), per_sm, int(cfg["min_warps"])
        )
    else:
        warps = int(cfg["warps"])
        min_blocks = max(1, per_sm // warps)
    chunks = k // chunk[0]
    if k * 2 + chunks * 20 + warps * 128 > SMEM_LIMIT:
        return None
    return {
        "steps": steps,
        "group_shift": chunk[1],
        "warps": warps,
        "min_blocks": min_blocks,
        "buffers": int(cfg["buffers"]),
        "early": int(bool(cfg["early"])),
        "center": int(x.dtype == torch.float16 if cfg["center"] == "auto" else bool(cfg["center"])),
        "shared": k * 2 + chunks * 20,
        "pairs": int(scales[3]),
    }


def gemv_int4_fma(x: torch.Tensor, w, bias: torch.Tensor | None, cfg: dict) -> torch.Tensor:
    """x [1, K] @ the prepared weight (+ bias) -> [1, N] in x.dtype; cfg from `plan`."""
    y = torch.empty((1, w.n), dtype=x.dtype, device=x.device)
    defines = (
        ("FP16", int(x.dtype == torch.float16)),
        ("STEPS", cfg["steps"]),
        ("WARPS", cfg["warps"]),
        ("BUFFERS", cfg["buffers"]),
        ("EARLY", cfg["early"]),
        ("MIN_BLOCKS", cfg["min_blocks"]),
        ("CENTER", cfg["center"]),
        ("PAIRS", cfg["pairs"]),
    )
    kern = nvrtc.kernel(SOURCE, "gemv_int4_fma", x.device, defines)
    if bias is not None:
        bias = bias.to(x.dtype).contiguous()
    scales, zs, stride_s, _ = w.scale_args()
    args = [
        ctypes.c_void_p(x.data_ptr()),
        ctypes.c_void_p(w.qweight.data_ptr()),
        ctypes.c_void_p(scales.data_ptr()),
        ctypes.c_void_p(zs.data_ptr()),
        ctypes.c_void_p(bias.data_ptr() if bias is not None else 0),
        ctypes.c_void_p(y.data_ptr()),
        ctypes.c_int(w.n),
        ctypes.c_int(w.k),
        ctypes.c_int(cfg["group_shift"]),
        ctypes.c_longlong(w.qweight.stride(0)),
        ctypes.c_longlong(stride_s),
        ctypes.c_int(int(bias is not None)),
        ctypes.c_longlong(32),  # prepare's layout: the next block's columns are 32 words on
        ctypes.c_longlong(32),
    ]
    blocks = (w.n + 31) // 32
    stream = torch.cuda.current_stream(x.device).cuda_stream
    kern.launch(
        (blocks, 1, 1),
        (32 * cfg["warps"], 1, 1),
        args,
        stream,
        pdl.enabled(x.device),
        cfg["shared"],
    )
    return y
