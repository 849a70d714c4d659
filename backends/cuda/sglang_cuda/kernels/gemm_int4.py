"""gemm.int4 on cuda: at one row of 16-bit x the CUDA-core GEMV (gemv_int4_fma_cuda) where its
launch table enables it, the CUDA C++ tensor-core GEMV (gemv_int4_cuda) for 1-8 rows, the
shared Triton kernels (sglang_triton.gemm_int4) for everything else. Both read the layout
of sglang_triton.gemm_int4.prepare, which this kernel registers as its own load-time step.
gemm.int4_rms: the tensor-core GEMV with a decoder layer's RMS norm inside at one row, else the
norm and `int4`."""

from __future__ import annotations

from sglang_triton import gemm_int4 as triton_int4
from sglang_triton import norm as triton_norm

from sglang_cuda.kernels import gemv_int4_cuda, gemv_int4_fma_cuda


def _prepared(qweight, packing, group_size, scales, qzeros, g_idx):
    """qweight as an Int4Weight: prepared at load time already, or the raw tensors (conformance)."""
    if isinstance(qweight, triton_int4.Int4Weight):
        return qweight
    raw = {"qweight": qweight, "scales": scales, "qzeros": qzeros, "g_idx": g_idx}
    return triton_int4.prepare({**raw, "packing": packing, "group_size": group_size})["qweight"]


def int4(
    x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None, launch=None
):
    """The spec's gemm.int4 (qweight: a prepared Int4Weight, or the raw tensors)."""
    w = _prepared(qweight, packing, group_size, scales, qzeros, g_idx)
    cfg = gemv_int4_fma_cuda.plan(x, w, (launch or {}).get("cuda_fma"))
    if cfg is not None:
        return gemv_int4_fma_cuda.gemv_int4_fma(x, w, bias, cfg)
    cfg = gemv_int4_cuda.plan(x, w, (launch or {}).get("cuda"))
    if cfg is not None:
        return gemv_int4_cuda.gemv_int4(x, w, bias, cfg)
    return triton_int4.int4(x, w, packing, group_size, bias=bias, launch=launch)


def int4_rms(
    x,
    norm_weight,
    qweight,
    packing,
    group_size,
    eps=1e-6,
    scales=None,
    qzeros=None,
    g_idx=None,
    bias=None,
    residual=None,
    return_normed=False,
    launch=None,
):
    """The spec's gemm.int4_rms: the tensor-core GEMV with the norm inside at one row where
    its table turns it on, else Triton's norm.rms then `int4`. qweight as gemm.int4's prepare
    left it (layers hand it that kernel's weight: gemm.int4_rms has no prepare of its own), or
    the raw tensors."""
    w = _prepared(qweight, packing, group_size, scales, qzeros, g_idx)
    cfg = gemv_int4_cuda.plan_rms(x, norm_weight, w, residual, (launch or {}).get("cuda"))
    if cfg is not None:
        return gemv_int4_cuda.gemv_int4_rms(
            x, norm_weight, w, eps, bias, residual, return_normed, cfg
        )
    if residual is None:
        normed, h = triton_norm.rms_norm(x, norm_weight, eps), None
    else:
        normed, h = triton_norm.rms_norm(x, norm_weight, eps, residual)
    out = [int4(normed, w, packing, group_size, bias=bias, launch=launch)]
    out += [h] if h is not None else []
    out += [normed] if return_normed else []
    return out[0] if len(out) == 1 else tuple(out)


def register(registry) -> None:
    from sglang_cuda.kernels import CUDA

    registry.register(
        "gemm.int4",
        CUDA.bind(int4, "gemm_int4"),
        name="cuda.int4_mma_gemv",
        priority=1,
        prepare=triton_int4.prepare,
    )
    registry.register(
        "gemm.int4_rms", CUDA.bind(int4_rms, "gemm_int4"), name="cuda.int4_rms_gemv", priority=1
    )
