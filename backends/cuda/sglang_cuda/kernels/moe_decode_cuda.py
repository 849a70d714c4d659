"""moe.experts at decode for 16-bit experts: the two GEMVs of sglang_triton.moe_decode in CUDA
C++ (csrc/moe_decode.cu, compiled by NVRTC), built as gemv_dense_cuda builds a GEMV: a block
owns a few rows, its warps split K in 256-element steps, every lane issues all its 16-byte
loads of a step group at once, and one shared-memory reduction ends a block.

Why: the MoE GEMVs are most of Qwen3-30B-A3B's batch-1 step. On an H100's profile (13a6abb,
docs/benchmarks.md) the Triton gate/up read its 50 MB in 20.7 us (2.4 TB/s) and down 25 MB in
11.8 us (2.1 TB/s), 32.5 us of a ~66 us layer; the dense GEMV built this way took the step's
small GEMVs ~20% faster.

Takes: float experts in x's dtype (bfloat16, float16) without biases, silu, no act-order,
D and I multiples of 8 with contiguous 16-byte-aligned rows, up to moe_decode.MAX_PAIRS
(token, slot) pairs, int32 ids. Everything else (and everything where NVRTC or a GPU is
missing, or while torch.compile traces) goes to the Triton kernels (`plan` returns None).
"""

from __future__ import annotations

import ctypes

import torch
from sglang_triton import moe_decode, pdl

from sglang_cuda import nvrtc

MOE_DECODE_CUDA_LAUNCH = {"enabled": True, "cols": 4, "rows": 8, "warps": "auto", "unroll": 1}
"""enabled: the A/B switch (on: in Qwen3-30B-A3B's batch-1 decode graph on an H100 the step fell
from 3.144 to 2.987 ms against the Triton kernels; cols 2 2.978, rows 4 2.981, rows 16 3.036,
warps 4 3.020, unroll 2 3.095, cols 8 3.259; docs/benchmarks.md); cols: gate/up
columns of I a block (it reads their gate and up rows: 2 x cols rows); rows: down's output rows
a block; warps: a block's warps ("auto": enough that each has about `unroll` units of 256
elements, 1 to 8: gate/up's units are K steps, down's (slot, step) pairs); unroll: units whose
loads a warp issues together."""

SOURCE = "moe_decode.cu"
STEP = 256


def _warps(units: int, cfg: dict) -> int:
    if cfg["warps"] != "auto":
        return int(cfg["warps"])
    want = max(1, units // int(cfg["unroll"]))
    return min(8, 1 << (want.bit_length() - 1))


def _rows_ok(t: torch.Tensor) -> bool:
    """Last dim contiguous, every other stride a whole number of 16-byte vectors."""
    return t.stride(-1) == 1 and all(s % 8 == 0 for s in t.stride()[:-1])


def plan(
    x, w13, w2, topk_weights, topk_ids, activation, has_extras: bool, launch=None
) -> dict | None:
    """The launches for these experts here, or None when these kernels do not apply.
    has_extras: biases, scales, zeros or an act-order permutation were given."""
    cfg = {**MOE_DECODE_CUDA_LAUNCH, **(launch or {})}
    if not cfg["enabled"] or has_extras or activation != "silu":
        return None
    if x.device.type != "cuda" or torch.compiler.is_compiling():
        return None
    if x.dim() != 2 or x.dtype not in (torch.bfloat16, torch.float16):
        return None
    if w13.dtype != x.dtype or w2.dtype != x.dtype or w13.dim() != 3 or w2.dim() != 3:
        return None
    tokens, hidden = x.shape
    experts, inter = w2.shape[0], w2.shape[2]
    top_k = topk_ids.shape[-1]
    if tokens == 0 or top_k == 0 or tokens * top_k > moe_decode.MAX_PAIRS:
        return None
    if tuple(w13.shape) != (experts, 2 * inter, hidden) or w2.shape[1] != hidden:
        return None
    if hidden % 8 or inter % 8 or inter == 0 or topk_ids.dtype != torch.int32:
        return None
    if not (_rows_ok(x) and _rows_ok(w13) and _rows_ok(w2)):
        return None
    if not nvrtc.aligned(x, w13, w2) or nvrtc.available() is not None:
        return None
    cols, rows, unroll = int(cfg["cols"]), int(cfg["rows"]), int(cfg["unroll"])
    out = {
        "cols": cols,
        "rows": rows,
        "unroll": unroll,
        "gate_up_warps": _warps(-(-hidden // STEP), cfg),
        "down_warps": _warps(top_k * -(-inter // STEP), cfg),
    }
    # a block's first `cols` / `rows` threads store its outputs: it needs that many
    if cols > 32 * out["gate_up_warps"] or rows > 32 * out["down_warps"]:
        raise ValueError(f"MoE decode launch {out}: cols / rows exceed the block's threads")
    return out


def experts_decode(x, w13, w2, topk_weights, topk_ids, cfg: dict) -> torch.Tensor:
    """The spec's moe.experts for these experts (cfg from `plan`): out [T, D] in x.dtype."""
    tokens, hidden = x.shape
    experts, inter = w2.shape[0], w2.shape[2]
    top_k = topk_ids.shape[-1]
    ids = topk_ids.reshape(-1).contiguous()
    weights = topk_weights.reshape(-1).to(torch.float32).contiguous()
    h = torch.empty((tokens * top_k, inter), dtype=torch.float32, device=x.device)
    out = torch.empty_like(x)
    base = (("FP16", int(x.dtype == torch.float16)), ("TOPK", top_k), ("UNROLL", cfg["unroll"]))
    stream = torch.cuda.current_stream(x.device).cuda_stream
    use_pdl = pdl.enabled(x.device)
    gate_up = nvrtc.kernel(
        SOURCE,
        "moe_gate_up",
        x.device,
        (*base, ("ROWS", 2 * cfg["cols"]), ("WARPS", cfg["gate_up_warps"])),
    )
    gate_up.launch(
        (-(-inter // cfg["cols"]), tokens * top_k, 1),
        (32 * cfg["gate_up_warps"], 1, 1),
        [
            ctypes.c_void_p(x.data_ptr()),
            ctypes.c_void_p(w13.data_ptr()),
            ctypes.c_void_p(ids.data_ptr()),
            ctypes.c_void_p(h.data_ptr()),
            ctypes.c_int(inter),
            ctypes.c_int(hidden),
            ctypes.c_int(experts),
            ctypes.c_longlong(x.stride(0)),
            ctypes.c_longlong(w13.stride(0)),
            ctypes.c_longlong(w13.stride(1)),
            ctypes.c_longlong(h.stride(0)),
        ],
        stream,
        use_pdl,
    )
    down = nvrtc.kernel(
        SOURCE, "moe_down", x.device, (*base, ("ROWS", cfg["rows"]), ("WARPS", cfg["down_warps"]))
    )
    down.launch(
        (-(-hidden // cfg["rows"]), tokens, 1),
        (32 * cfg["down_warps"], 1, 1),
        [
            ctypes.c_void_p(h.data_ptr()),
            ctypes.c_void_p(w2.data_ptr()),
            ctypes.c_void_p(ids.data_ptr()),
            ctypes.c_void_p(weights.data_ptr()),
            ctypes.c_void_p(out.data_ptr()),
            ctypes.c_int(hidden),
            ctypes.c_int(inter),
            ctypes.c_int(experts),
            ctypes.c_longlong(h.stride(0)),
            ctypes.c_longlong(w2.stride(0)),
            ctypes.c_longlong(w2.stride(1)),
            ctypes.c_longlong(out.stride(0)),
        ],
        stream,
        use_pdl,
    )
    return out
