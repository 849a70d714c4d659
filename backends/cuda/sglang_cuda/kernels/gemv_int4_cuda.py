"""gemm.int4 at 1-8 rows of 16-bit x (decode): the tensor-core GEMV in CUDA C++
(csrc/gemv_int4_mma.cu, compiled by NVRTC: sglang_cuda.nvrtc), over the layout of
sglang_triton.gemm_int4.prepare, so it serves every W4A16 checkpoint the Triton kernels serve
(float32 scales and zero x scale, or float16 (scale, zero) pairs: the PAIRS define).

Why not Triton: the Triton mma kernel (sglang_triton.gemv_int4) spends 136 warp-instructions
per KiB of weights and waits for every MMA before it scales the step's product (SASS,
benchmarks/sass_loop_stats.py); on an H200 it streams the 8B's weights at ~1.74 TB/s. Here a
lane's 16-byte load is four MMA A-operands as they stand (the MMA's k order is permuted to
match the packed nibbles, and x's pairs are permuted to match: csrc's header), ~80
instructions per KiB, and the next chunk's loads are in flight while this one computes.

Falls back (returns None from `plan`) for float32 x, more than MAX_ROWS rows, GPTQ act-order
(x read through perm), N not a multiple of 4, a group size that is not a multiple of 32 (or of
128 above 128, a power-of-two number of 128-row chunks, or all of K), misaligned tensors, and
while torch.compile traces.
"""

from __future__ import annotations

import ctypes

import torch
from sglang_triton import pdl

from sglang_cuda import nvrtc
from sglang_cuda.kernels import gemv_dense_cuda

MAX_ROWS = 8
"""x's rows are the MMA's 8 columns: up to 8 cost one weight read."""

GEMV_INT4_CUDA_LAUNCH = {
    "enabled": True,
    "warps": "auto",
    "stages": 0,
    "early": False,
    "x_smem": False,
    "buffers": 3,
    "min_warps": 2,
    "prefetch": 0,
    "ring": 0,
    "rms": False,
    "rms_early": False,
    "rms_max_n": None,
    "carveout": None,
}
"""On by default: its tests passed on the H200 (147 with the Triton int4 and quantized-model
tests) and the AWQ ITL fell 2.74 -> 2.20 ms in the same call (docs/benchmarks.md).
enabled: False keeps the Triton kernels (the A/B switch); warps: a block's warps, which split K
(a block owns 32 output columns), or "auto" (nvrtc.block_warps); stages: 0 for two register
buffers (50.4 us a Llama-8B layer against Triton's 63.5), N >= 2 for N - 1 chunks in flight
through cp.async and shared memory (82-87 us: lost); early: with stages, the first chunks'
weight copies start before griddepcontrol.wait (weights are constants of the step; x is read
after the wait); x_smem (with stages 0): x's rows staged once in shared memory, so a
register buffer holds only a chunk's weights and scales, and a warp keeps `buffers` (2 or 3)
chunks in flight in about the registers two full buffers took (128 against 126 at 3); where x
would take more than X_SMEM_MAX bytes the plain path runs; off: it lost in the AWQ 8B's step on
an H100 (2.586 ms against 2.426). min_warps: the fewest warps "auto" gives a block: 2 (was 4)
puts gate_up's 896 blocks in one wave, each warp streaming twice the K, where 4 warps ran 1.7
waves of 16 warps a processor (registers allow no more), the second 70% full (Nsight Compute on
the H200). On an H100: gate_up 27.3 -> 26.7 us, the AWQ 8B's step in its graph 2.387 -> 2.370
ms, ITL 2.447 / 2.448 -> 2.437 ms (docs/benchmarks.md, 2026-12-06). prefetch (register
buffers, x not staged): chunks ahead of the buffers a warp asks L2 for (prefetch.global.L2, no
registers); off: it lost at 2, 4 and 8 chunks (the 8B's four shapes 63.0-64.9 us against 55.7,
the step 2.58-2.63 ms against 2.39, H100). The kernel is latency bound: 126 registers a thread
allow 16 warps a processor, each with one 2 KiB chunk in flight beside the one it computes.
ring (register buffers, x not staged): N chunks of weights in flight a warp through a ring of
16-byte registers, one a 32-row step, each refilled as soon as its step is taken (x one step
ahead, the scales one chunk ahead), with the registers capped at 128 so that 16 warps a processor
still fit: 4 chunks take 128 registers (nvcc, sm_90a, no spills) against the buffers' 126 for
one chunk in flight. Off: correct (its tests passed on an H100) but it lost by half, the 8B's
four shapes 85-91 us against 54.3 and the step in its graph 3.37-3.48 ms against 2.37
(docs/benchmarks.md, 2026-12-06).
rms: gemm.int4_rms (a decoder layer's RMS norm and the W4A16 projection after it) at one row
as this GEMV with the norm inside (gemv_int4_rms: each warp stages its K range of the norm's
input times its weight in shared memory with its share of the sum of squares, the block's
reciprocal RMS scales the sums; two register buffers of weights, 114 registers: three take 139).
Off: the norm and the GEMV as two launches won in the AWQ 8B's decode graph on an H100, 2.399
ms a step against 2.477 fused (h g staged by register loads) and 2.801 (x, the residual and g
copied by cp.async); ITL 2.47 against 2.54 (docs/benchmarks.md, 2026-12-06 evening). rms_early: its first two chunks' weights loaded
before griddepcontrol.wait. rms_max_n: the largest N it takes (None: any), larger ones keep
the two launches. carveout: the share of L1 / shared memory both kernels prefer as shared
memory, in percent (None: the driver's choice); a probe of whether the staged kernels (rms,
x_smem) lose to a change of the processors' split between them and the kernels around them."""

X_SMEM_MAX = 32 << 10
"""Bytes of x (min(M, 8) rows x K x 2) up to which x_smem stages it: with the partial sums'
static 16 KiB at 16 warps, a block stays within the 48 KiB it may use without opting in (one
row of K 16384, two of 8192)."""


SOURCE = "gemv_int4_mma.cu"


def _chunk_rows(group_size: int, k: int) -> tuple[int, int] | None:
    """(input rows a chunk, log2 of chunks a group) for this group size and K, or None."""
    if group_size % 32 or k % 32:
        return None
    if group_size <= 128:
        return (group_size, 0) if k % group_size == 0 else None
    if k % 128:
        return None
    if group_size >= k:
        return 128, 31  # one group: scale row 0 throughout
    per = group_size // 128
    if group_size % 128 or per & (per - 1) or k % group_size:
        return None
    return 128, per.bit_length() - 1


def scale_args(w) -> tuple[torch.Tensor, torch.Tensor, int, bool] | None:
    """w's scales as the CUDA int4 kernels take them (Int4Weight.scale_args: S, ZS, S's row
    stride in 4-byte entries, PAIRS), or None where a lane's 16-byte loads of four columns'
    entries would be misaligned."""
    s, zs, stride, pairs = w.scale_args()
    if pairs:
        if s.stride(2) != 1 or s.stride(1) != 2 or s.stride(0) % 8:
            return None
    elif s.stride() != zs.stride() or s.stride(1) != 1 or s.stride(0) % 4:
        return None
    return (s, zs, stride, pairs) if nvrtc.aligned(s, zs) else None


def plan(x: torch.Tensor, w, launch=None) -> dict | None:
    """The launch for x @ w here, or None when this kernel does not apply (module docstring)."""
    cfg = {**GEMV_INT4_CUDA_LAUNCH, **(launch or {})}
    if int(cfg["stages"]) == 1:
        raise ValueError("stages: 0 (register buffers) or at least 2 (a cp.async pipeline)")
    if int(cfg["buffers"]) not in (2, 3):
        raise ValueError(f"buffers: 2 or 3, got {cfg['buffers']!r}")
    if not 0 <= int(cfg["ring"]) <= 8:
        raise ValueError(f"ring: 0 (off) to 8 chunks, got {cfg['ring']!r}")
    if not cfg["enabled"] or x.device.type != "cuda" or torch.compiler.is_compiling():
        return None
    if x.dtype not in (torch.bfloat16, torch.float16) or x.dim() != 2:
        return None
    m, k = x.shape
    if not 0 < m <= MAX_ROWS or w.perm is not None or w.n % 4 or w.n == 0 or k != w.k:
        return None
    chunk = _chunk_rows(w.group_size, w.k)
    if chunk is None or nvrtc.available() is not None:
        return None
    if x.stride(1) != 1 or x.stride(0) % 8 or not nvrtc.aligned(x):
        return None
    qw = w.qweight
    if qw.stride(1) != 1 or qw.stride(0) % 4 or not nvrtc.aligned(qw):
        return None
    scales = scale_args(w)
    if scales is None:
        return None
    return {**cfg, "steps": chunk[0] // 32, "group_shift": chunk[1], "pairs": scales[3]}


def plan_rms(x, norm_weight, w, residual=None, launch=None) -> dict | None:
    """`plan` for gemm.int4_rms at one row: also the norm's weight [K] and the residual [1, K]
    in x's dtype, contiguous and 16-byte aligned, h g (K x 2 bytes) within X_SMEM_MAX, and N at
    most the table's rms_max_n."""
    cfg = plan(x, w, launch)
    if cfg is None or not cfg["rms"] or x.shape[0] != 1 or w.k * 2 > X_SMEM_MAX:
        return None
    if cfg["rms_max_n"] is not None and w.n > int(cfg["rms_max_n"]):
        return None
    return cfg if gemv_dense_cuda.norm_inputs_fit(x, norm_weight, residual) else None


def gemv_int4_rms(x, norm_weight, w, eps, bias, residual, return_normed, cfg):
    """gemm.int4_rms at one row (the spec's returns); cfg from `plan_rms`."""
    y = torch.empty((1, w.n), dtype=x.dtype, device=x.device)
    h = torch.empty_like(x) if residual is not None else None
    normed = torch.empty_like(x) if return_normed else None
    blocks = (w.n + 31) // 32
    warps = nvrtc.warps_for(cfg["warps"], blocks, x.device, int(cfg["min_warps"]))
    defines = (
        ("FP16", int(x.dtype == torch.float16)),
        ("STEPS", cfg["steps"]),
        ("WARPS", warps),
        ("STAGES", 0),
        ("EARLY", int(bool(cfg["rms_early"]))),
        ("BUFFERS", 2),
        ("NORM", 1),
        ("PAIRS", int(cfg["pairs"])),
    )
    kern = nvrtc.kernel(SOURCE, "gemv_int4_rms", x.device, defines)
    kern.prefer_carveout(cfg["carveout"])
    if bias is not None:
        bias = bias.to(x.dtype).contiguous()
    flags = gemv_dense_cuda.norm_flags(bias, residual, h, normed)
    ptr = gemv_dense_cuda.pointer

    scales, zs, stride_s, _ = w.scale_args()
    args = [
        ptr(x),
        ptr(residual),
        ptr(norm_weight),
        ctypes.c_float(eps),
        ptr(w.qweight),
        ptr(scales),
        ptr(zs),
        ptr(bias),
        ptr(y),
        ptr(h),
        ptr(normed),
        ctypes.c_int(w.n),
        ctypes.c_int(w.k),
        ctypes.c_int(cfg["group_shift"]),
        ctypes.c_longlong(w.qweight.stride(0)),
        ctypes.c_longlong(stride_s),
        ctypes.c_int(flags),
    ]
    stream = torch.cuda.current_stream(x.device).cuda_stream
    pdl_on = pdl.enabled(x.device)
    kern.launch((blocks, 1, 1), (32 * warps, 1, 1), args, stream, pdl_on, w.k * 2)
    out = [y] + ([h] if h is not None else []) + ([normed] if normed is not None else [])
    return out[0] if len(out) == 1 else tuple(out)


def gemv_int4(x: torch.Tensor, w, bias: torch.Tensor | None, cfg: dict) -> torch.Tensor:
    """x [M, K] @ the prepared weight (+ bias) -> [M, N] in x.dtype; cfg from `plan`."""
    m = x.shape[0]
    y = torch.empty((m, w.n), dtype=x.dtype, device=x.device)
    blocks = (w.n + 31) // 32
    warps = nvrtc.warps_for(cfg["warps"], blocks, x.device, int(cfg["min_warps"]))
    stages, steps = int(cfg["stages"]), cfg["steps"]
    x_bytes = min(m, 8) * w.k * 2
    # staged x and the static partial sums (1 KiB a warp) within the 48 KiB a block may use
    # without opting in (the launch opts in for the dynamic part only)
    staged = (
        not stages
        and bool(cfg["x_smem"])
        and x_bytes <= X_SMEM_MAX
        and x_bytes + warps * 1024 <= 48 << 10
    )
    ring = 0 if stages or staged else int(cfg["ring"])
    defines = (
        ("FP16", int(x.dtype == torch.float16)),
        ("STEPS", steps),
        ("WARPS", warps),
        ("STAGES", stages),
        ("EARLY", int(bool(cfg["early"]) and stages > 0)),
        ("XSMEM", int(staged)),
        ("BUFFERS", int(cfg["buffers"]) if staged else 2),
        ("PREFETCH", 0 if stages or staged else int(cfg["prefetch"])),
        ("RING", ring * steps),
        # with the ring, 16 warps a processor whatever a block's warps: at most 128 registers
        ("MIN_BLOCKS", max(1, 16 // warps) if ring else 1),
        ("PAIRS", int(cfg["pairs"])),
    )
    # a slot: a lane's 16 bytes a step, and its scale vectors (csrc's Slot: one with PAIRS)
    slot = (steps + (1 if cfg["pairs"] else 2)) * 32 * 16
    shared = warps * stages * slot if stages else (x_bytes if staged else 0)
    kern = nvrtc.kernel(SOURCE, "gemv_int4_mma", x.device, defines)
    kern.prefer_carveout(cfg["carveout"])
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
        ctypes.c_int(m),
        ctypes.c_int(w.n),
        ctypes.c_int(w.k),
        ctypes.c_int(cfg["group_shift"]),
        ctypes.c_longlong(x.stride(0)),
        ctypes.c_longlong(w.qweight.stride(0)),
        ctypes.c_longlong(stride_s),
        ctypes.c_longlong(y.stride(0)),
        ctypes.c_int(int(bias is not None)),
    ]
    stream = torch.cuda.current_stream(x.device).cuda_stream
    kern.launch((blocks, 1, 1), (32 * warps, 1, 1), args, stream, pdl.enabled(x.device), shared)
    return y
