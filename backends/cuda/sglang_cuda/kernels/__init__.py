"""The cuda kernels, one module per op family (mirroring sglang.ops), each with register().

Triton kernels (norm, activation, rope, attention, moe.experts, the W4A16 and scaled GEMMs,
the grammar mask) and torch ops where cuBLAS or a plain scatter already does the job
(gemm.dense, kv.store, moe.route, sampling). Rules every module follows: kernels/common.py.
"""

from __future__ import annotations

KERNEL_MODULES: tuple[str, ...] = (
    "sglang_cuda.kernels.norm",
    "sglang_cuda.kernels.activation",
    "sglang_cuda.kernels.rope",
    "sglang_cuda.kernels.kv",
    "sglang_cuda.kernels.attention",
    "sglang_cuda.kernels.moe",
    "sglang_cuda.kernels.gemm",
    "sglang_cuda.kernels.gemm_fp8",
    "sglang_cuda.kernels.gemm_int4",
    "sglang_cuda.kernels.gemm_fp4",
    "sglang_cuda.kernels.sampling",
    "sglang_cuda.kernels.grammar",
)
