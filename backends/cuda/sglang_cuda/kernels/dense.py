"""gemm.dense on cuda: the CUDA C++ GEMV (gemv_dense_cuda) for one row of 16-bit x where its
launch table turns it on, else the path shared with rocm (sglang_triton.dense: the Triton
GEMVs at a few rows, cuBLAS for the rest)."""

from __future__ import annotations

from sglang_triton import dense as shared

from sglang_cuda.kernels import gemv_dense_cuda


def dense(x, weight, bias=None, launch=None):
    """The spec's gemm.dense (launch: the shared path's overrides, and "cuda" for this GEMV's)."""
    cfg = gemv_dense_cuda.plan(x, weight, (launch or {}).get("cuda"))
    if cfg is not None:
        return gemv_dense_cuda.gemv_dense(x, weight, bias, cfg)
    return shared.dense(x, weight, bias, launch)


def register(registry) -> None:
    from sglang_cuda.kernels import CUDA

    registry.register("gemm.dense", CUDA.bind(dense, "dense"), name="cuda.dense_gemv", priority=1)
