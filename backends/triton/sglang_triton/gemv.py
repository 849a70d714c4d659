"""gemm.dense for one row (batch-1 decode) in Triton: y[1, N] = x[1, K] @ W[N, K].T (+ bias).

At M = 1 a linear layer is a pure read of W, so its time is W's bytes over the memory
bandwidth the kernel reaches. Each program owns BLOCK_N output features and streams their
rows of W in [BLOCK_N, BLOCK_K] tiles, multiplying by x in float32 registers and reducing
along K once at the end (one tree reduction per program, not one per tile). Small BLOCK_N
gives thousands of programs even for N = 4096, so every SM has several tiles in flight; no
split-K, no atomics, no second kernel. float32 inputs are not taken (cuBLAS keeps those).

Used by `dense` in gemm.py when x has one row and the dtype is bfloat16 or float16, where it
is faster than cuBLAS (see GEMV_LAUNCH and benchmarks/tune_cuda_decode.py --gemv).
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None
    tl = None

GEMV_LAUNCH = {"block_n": 16, "block_k": 1024, "num_warps": 8, "num_stages": 3}
"""Launch parameters (a tuning run may pass others per call)."""

DTYPES = (torch.bfloat16, torch.float16)


if triton is not None:

    @triton.jit
    def _gemv_kernel(
        X,
        W,
        B,
        Y,
        N,
        K,
        stride_wn,
        HAS_BIAS: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        EVEN_K: tl.constexpr,
    ):
        pid = tl.program_id(0)
        rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < N
        cols = tl.arange(0, BLOCK_K)
        acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
        w_ptr = W + rows[:, None].to(tl.int64) * stride_wn + cols[None, :]
        for k0 in range(0, K, BLOCK_K):
            if EVEN_K:
                x = tl.load(X + k0 + cols)
                w = tl.load(w_ptr + k0, mask=row_ok[:, None], other=0.0)
            else:
                k_ok = (k0 + cols) < K
                x = tl.load(X + k0 + cols, mask=k_ok, other=0.0)
                w = tl.load(w_ptr + k0, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
        y = tl.sum(acc, axis=1)
        if HAS_BIAS:
            y += tl.load(B + rows, mask=row_ok, other=0.0).to(tl.float32)
        tl.store(Y + rows, y.to(Y.dtype.element_ty), mask=row_ok)


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
    cfg = GEMV_LAUNCH if launch is None else {**GEMV_LAUNCH, **launch}
    n, k = weight.shape
    y = torch.empty(1, n, dtype=x.dtype, device=x.device)
    if n == 0:
        return y
    if k == 0:
        return y.zero_() if bias is None else y.copy_(bias.to(y.dtype).expand_as(y))
    x = x.contiguous()
    block_n, block_k = cfg["block_n"], cfg["block_k"]
    _gemv_kernel[(triton.cdiv(n, block_n),)](
        x,
        weight,
        bias if bias is not None else y,
        y,
        n,
        k,
        weight.stride(0),
        HAS_BIAS=bias is not None,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        EVEN_K=k % block_k == 0,
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
    )
    return y
