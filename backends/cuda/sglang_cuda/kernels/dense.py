"""gemm.dense on cuda: the CUDA C++ GEMV (gemv_dense_cuda) for one row of 16-bit x where its
launch table turns it on, else the path shared with rocm (sglang_triton.dense: the Triton
GEMVs at a few rows, cuBLAS for the rest). gemm.dense_rms: the same GEMV with the RMS norm
inside it at one row (GEMV_DENSE_CUDA_LAUNCH["rms"], on), else the norm and the
GEMM as two launches."""

from __future__ import annotations

from sglang_triton import dense as shared
from sglang_triton import norm as shared_norm

from sglang_cuda.kernels import gemv_dense_cuda


def dense(x, weight, bias=None, launch=None):
    """The spec's gemm.dense (launch: the shared path's overrides, and "cuda" for this GEMV's)."""
    cfg = gemv_dense_cuda.plan(x, weight, (launch or {}).get("cuda"))
    if cfg is not None:
        return gemv_dense_cuda.gemv_dense(x, weight, bias, cfg)
    return shared.dense(x, weight, bias, launch)


def dense_rms(
    x,
    norm_weight,
    weight,
    eps=1e-6,
    bias=None,
    residual=None,
    return_normed=False,
    launch=None,
):
    """The spec's gemm.dense_rms: the CUDA C++ GEMV with the norm inside at one row where the
    table turns it on, else Triton's norm.rms then `dense`."""
    cuda_launch = (launch or {}).get("cuda")
    if {**gemv_dense_cuda.GEMV_DENSE_CUDA_LAUNCH, **(cuda_launch or {})}["rms"]:
        cfg = gemv_dense_cuda.plan_rms(x, norm_weight, weight, residual, cuda_launch)
        if cfg is not None:
            return gemv_dense_cuda.gemv_dense_rms(
                x, norm_weight, weight, eps, bias, residual, return_normed, cfg
            )
    if residual is None:
        normed, h = shared_norm.rms_norm(x, norm_weight, eps), None
    else:
        normed, h = shared_norm.rms_norm(x, norm_weight, eps, residual)
    out = [dense(normed, weight, bias, launch)]
    out += [h] if h is not None else []
    out += [normed] if return_normed else []
    return out[0] if len(out) == 1 else tuple(out)


def register(registry) -> None:
    from sglang_cuda.kernels import CUDA

    registry.register("gemm.dense", CUDA.bind(dense, "dense"), name="cuda.dense_gemv", priority=1)
    registry.register(
        "gemm.dense_rms", CUDA.bind(dense_rms, "dense"), name="cuda.dense_rms_gemv", priority=1
    )
