"""gemm.int4 on cuda: at one row of 16-bit x the CUDA-core GEMV (gemv_int4_fma_cuda) where its
launch table enables it, the CUDA C++ tensor-core GEMV (gemv_int4_cuda) for 1-8 rows, the
shared Triton kernels (sglang_triton.gemm_int4) for everything else. Both read the layout
of sglang_triton.gemm_int4.prepare, which this kernel registers as its own load-time step."""

from __future__ import annotations

from sglang_triton import gemm_int4 as triton_int4

from sglang_cuda.kernels import gemv_int4_cuda, gemv_int4_fma_cuda


def int4(
    x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None, launch=None
):
    """The spec's gemm.int4 (qweight: a prepared Int4Weight, or the raw tensors)."""
    w = qweight
    if not isinstance(w, triton_int4.Int4Weight):
        raw = {"qweight": qweight, "scales": scales, "qzeros": qzeros, "g_idx": g_idx}
        w = triton_int4.prepare({**raw, "packing": packing, "group_size": group_size})["qweight"]
    cfg = gemv_int4_fma_cuda.plan(x, w, (launch or {}).get("cuda_fma"))
    if cfg is not None:
        return gemv_int4_fma_cuda.gemv_int4_fma(x, w, bias, cfg)
    cfg = gemv_int4_cuda.plan(x, w, (launch or {}).get("cuda"))
    if cfg is not None:
        return gemv_int4_cuda.gemv_int4(x, w, bias, cfg)
    return triton_int4.int4(x, w, packing, group_size, bias=bias, launch=launch)


def register(registry) -> None:
    from sglang_cuda.kernels import CUDA

    registry.register(
        "gemm.int4",
        CUDA.bind(int4, "gemm_int4"),
        name="cuda.int4_mma_gemv",
        priority=1,
        prepare=triton_int4.prepare,
    )
