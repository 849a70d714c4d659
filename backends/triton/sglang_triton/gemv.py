"""gemm.dense for one row (batch-1 decode) in Triton: y[1, N] = x[1, K] @ W[N, K].T (+ bias).

At M = 1 a linear layer is a pure read of W, so its time is W's bytes over the memory
bandwidth the kernel reaches. Each program owns BLOCK_N output features and streams their
rows of W in [BLOCK_N, BLOCK_K] tiles, multiplying by x in float32 registers and reducing
along K once at the end (one tree reduction per program, not one per tile). Small BLOCK_N
gives hundreds of programs even for N = 4096; split-K (split_k.py: "split_k" in the launch)
multiplies them for a small N or a long K, finished in the same kernel. float32 inputs are not
taken (cuBLAS keeps those).

Used by `dense` in gemm.py when x has one row and the dtype is bfloat16 or float16, where it
is as fast as cuBLAS or faster (see GEMV_LAUNCH and benchmarks/bench_decode_gemv.py).
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None
    tl = None
else:
    from sglang_triton import pdl, split_k
    from sglang_triton.common import mma

GEMV_LAUNCH = {"block_n": 16, "block_k": 1024, "num_warps": 8, "num_stages": 3, "split_k": 1}
"""Launch parameters (a tuning run may pass others per call); split_k: a number or "auto".
Unsplit 16 x 1024, 8 warps: 47fb680's launch, whose kernel the SPLIT == 1 path compiles to
(the same PTX for sm_90). The per-kernel sweep (benchmarks/bench_decode_gemv.py, M = 1) had
16 x 512, 4 warps, split-K auto faster per layer (360 us against 429), but in the model's
decode graph on the H200 the 8B batch-1 step ran 4.77 ms with it against 4.60 with 47fb680's
kernel (its GEMVs 31.6 against 30.1 us a call on the profile)."""

SMALL_LAUNCH: list[tuple[int, dict]] = [
    (1 << 20, {"block_n": 4, "block_k": 1024, "num_warps": 4, "split_k": 1, "num_stages": 3}),
    (12 << 20, {"block_n": 4, "block_k": 512, "num_warps": 4, "split_k": "auto", "num_stages": 3}),
]
"""Launches by weight size, for the small GEMVs the default (tuned on Llama-8B's 4096-wide
shapes, 16.8M elements and up) leaves short of programs: (max N*K, overrides of GEMV_LAUNCH),
ascending; the first entry a weight fits takes it. The tiers were picked by
benchmarks/bench_decode_gemv.py --dense-shapes qwen3 on an H200 (2026-12-04) over Qwen3-30B-A3B's
router (128 x 2048: 2.4 us against 3.2) and its qkv and o projections (5120 x 2048, 2048 x 4096:
15.4 us against 16.6 for the pair); larger weights keep GEMV_LAUNCH."""

DTYPES = (torch.bfloat16, torch.float16)

ROWS_LAUNCH = {
    "enabled": False,
    "min_rows": 2,
    "max_rows": 16,
    "block_n": 64,
    "block_k": 256,
    "num_warps": 4,
    "num_stages": 4,
    "split_k": "auto",
}
"""gemm.dense for min_rows..max_rows rows (at most 16) on the tensor cores (`rows`,
_rows_mma_kernel): small decode batches and short prefills, which otherwise go to cuBLAS (or,
at one row, to the FMA GEMV above). Off ("enabled") until timed on a GPU against both
(benchmarks/bench_decode_gemv.py --only rows)."""


def launch_for(n: int, k: int, launch=None) -> dict:
    """GEMV_LAUNCH, with the size rule's overrides for an N x K weight, then `launch`'s."""
    cfg = GEMV_LAUNCH
    for limit, small in SMALL_LAUNCH:
        if n * k <= limit:
            cfg = {**cfg, **small}
            break
    return cfg if launch is None else {**cfg, **launch}


if triton is not None:

    @triton.jit
    def _gemv_kernel(
        X,
        W,
        B,
        Y,
        PART,
        COUNT,
        N,
        K,
        steps_per_split,
        stride_wn,
        HAS_BIAS: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        EVEN_K: tl.constexpr,
        SPLIT: tl.constexpr,
        PDL: tl.constexpr,
    ):
        pid = tl.program_id(0)
        ks = tl.program_id(1)
        rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < N
        cols = tl.arange(0, BLOCK_K)
        acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
        w_ptr = W + rows[:, None].to(tl.int64) * stride_wn + cols[None, :]
        if SPLIT == 1:  # static bounds: the loop Triton pipelines best (47fb680's kernel)
            k_begin = 0
            k_end = K
        else:
            k_begin = ks * steps_per_split * BLOCK_K
            k_end = tl.minimum(K, k_begin + steps_per_split * BLOCK_K)
        pdl.wait_for_inputs(PDL)  # released after the loop, not here (pdl.py)
        for k0 in range(k_begin, k_end, BLOCK_K):
            if EVEN_K:
                x = tl.load(X + k0 + cols)
                w = tl.load(w_ptr + k0, mask=row_ok[:, None], other=0.0)
            else:
                k_ok = (k0 + cols) < K
                x = tl.load(X + k0 + cols, mask=k_ok, other=0.0)
                w = tl.load(w_ptr + k0, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
        pdl.release_dependents(PDL)
        y = tl.sum(acc, axis=1)
        split_k.finish(
            y,
            Y + rows,
            B + rows,
            row_ok,
            PART,
            COUNT,
            pid,
            ks,
            tl.num_programs(0),
            HAS_BIAS,
            SPLIT,
            BLOCK_N,
        )


if triton is not None:

    @triton.jit
    def _rows_mma_kernel(
        X,
        W,
        B,
        Y,
        PART,
        COUNT,
        M,
        N,
        K,
        steps_per_split,
        stride_xm,
        stride_wn,
        stride_ym,
        HAS_BIAS: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        EVEN_K: tl.constexpr,
        ROWS: tl.constexpr,
        SPLIT: tl.constexpr,
        PDL: tl.constexpr,
    ):
        """y^T = W x^T for M <= 16 rows of x: a program owns BLOCK_N output features (the
        MMA's first operand, [BLOCK_N, BLOCK_K] tiles of W: wgmma from 64 rows) and a part of
        K; x^T is the [BLOCK_K, 16] second operand, columns past M zero. Nothing scales a
        step's product, so the tensor cores accumulate across the loop without waiting on
        each step (the quantized GEMVs drain every step to apply group scales), and the
        compiler multi-buffers W's tiles. Split-K and the store as the quantized GEMVs'
        (split_k.finish_columns)."""
        nb = tl.program_id(0)
        ks = tl.program_id(1)
        r = tl.arange(0, 16)
        r_ok = r < M
        rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < N
        kk = tl.arange(0, BLOCK_K)
        w_ptr = W + rows[:, None].to(tl.int64) * stride_wn + kk[None, :]
        x_ptr = X + r[None, :].to(tl.int64) * stride_xm + kk[:, None]
        acc = tl.zeros([BLOCK_N, 16], tl.float32)
        if SPLIT == 1:
            k_begin = 0
            k_end = K
        else:
            k_begin = ks * steps_per_split * BLOCK_K
            k_end = tl.minimum(K, k_begin + steps_per_split * BLOCK_K)
        pdl.wait_for_inputs(PDL)  # released after the loop, not here (pdl.py)
        for k0 in range(k_begin, k_end, BLOCK_K):
            if EVEN_K:
                w = tl.load(w_ptr + k0, mask=row_ok[:, None], other=0.0)
                xt = tl.load(x_ptr + k0, mask=r_ok[None, :], other=0.0)
            else:
                k_ok = (k0 + kk) < K
                w = tl.load(w_ptr + k0, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
                xt = tl.load(x_ptr + k0, mask=k_ok[:, None] & r_ok[None, :], other=0.0)
            acc = mma(acc, w, xt, False)
        pdl.release_dependents(PDL)
        split_k.finish_columns(
            acc,
            M,
            Y,
            stride_ym,
            B,
            rows,
            row_ok,
            PART,
            COUNT,
            nb,
            ks,
            HAS_BIAS,
            SPLIT,
            BLOCK_N,
            ROWS,
        )


def rows_apply(x: torch.Tensor, weight: torch.Tensor, launch=None) -> bool:
    """ROWS_LAUNCH (or `launch` over it) enabled and x's rows in its range; otherwise as
    `applies` (a half-precision dtype shared by x and W, W rows contiguous, on a GPU)."""
    cfg = ROWS_LAUNCH if launch is None else {**ROWS_LAUNCH, **launch}
    return (
        triton is not None
        and cfg["enabled"]
        and x.dim() == 2
        and max(cfg["min_rows"], 1) <= x.shape[0] <= min(cfg["max_rows"], 16)
        and x.dtype in DTYPES
        and weight.dtype == x.dtype
        and weight.stride(1) == 1
        and x.stride(-1) == 1
        and x.device.type == "cuda"
    )


def rows(x: torch.Tensor, weight: torch.Tensor, bias=None, launch=None) -> torch.Tensor:
    """gemm.dense for 1..16 rows of a half-precision x on the tensor cores (_rows_mma_kernel)."""
    cfg = ROWS_LAUNCH if launch is None else {**ROWS_LAUNCH, **launch}
    m, k = x.shape
    n = weight.shape[0]
    if m > 16:
        raise ValueError(f"gemv.rows takes at most 16 rows of x, got {m}")
    y = torch.empty(m, n, dtype=x.dtype, device=x.device)
    if n == 0 or m == 0:
        return y
    if k == 0:
        return y.zero_() if bias is None else y.copy_(bias.to(y.dtype).expand_as(y))
    x = x if x.stride(-1) == 1 else x.contiguous()
    block_n, block_k = cfg["block_n"], cfg["block_k"]
    blocks = triton.cdiv(n, block_n)
    steps = triton.cdiv(k, block_k)
    split = split_k.choose(cfg.get("split_k", 1), blocks, steps, x.device)
    split = split if blocks * m <= split_k.MAX_SLOTS else 1
    _rows_mma_kernel[(blocks, split)](
        x,
        weight,
        bias if bias is not None else y,
        y,
        split_k.workspace(split, blocks * m, block_n, x.device),
        split_k.counters(x.device) if split > 1 else y,
        m,
        n,
        k,
        triton.cdiv(steps, split),
        x.stride(0),
        weight.stride(0),
        y.stride(0),
        HAS_BIAS=bias is not None,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        EVEN_K=k % block_k == 0,
        ROWS=1 << (m - 1).bit_length(),
        SPLIT=split,
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
        **pdl.args(x.device),
    )
    return y


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """One row, a half-precision dtype shared by x and W, W rows contiguous, on a GPU."""
    return (
        triton is not None
        and x.dim() == 2
        and x.shape[0] == 1
        and x.dtype in DTYPES
        and weight.dtype == x.dtype
        and weight.stride(1) == 1
        and x.device.type == "cuda"
    )


def gemv(x: torch.Tensor, weight: torch.Tensor, bias=None, launch=None) -> torch.Tensor:
    n, k = weight.shape
    cfg = launch_for(n, k, launch)
    y = torch.empty(1, n, dtype=x.dtype, device=x.device)
    if n == 0:
        return y
    if k == 0:
        return y.zero_() if bias is None else y.copy_(bias.to(y.dtype).expand_as(y))
    x = x.contiguous()
    block_n, block_k = cfg["block_n"], cfg["block_k"]
    slots = triton.cdiv(n, block_n)
    steps = triton.cdiv(k, block_k)
    split = split_k.choose(cfg.get("split_k", 1), slots, steps, x.device)
    _gemv_kernel[(slots, split)](
        x,
        weight,
        bias if bias is not None else y,
        y,
        split_k.workspace(split, slots, block_n, x.device),
        split_k.counters(x.device) if split > 1 else y,
        n,
        k,
        triton.cdiv(steps, split),
        weight.stride(0),
        HAS_BIAS=bias is not None,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        EVEN_K=k % block_k == 0,
        SPLIT=split,
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
        **pdl.args(x.device),
    )
    return y
