"""The xeon kernels, one module per op family (mirroring sglang.ops), each with register()."""

from __future__ import annotations

KERNEL_MODULES = (
    "sglang_xeon.kernels.norm",
    "sglang_xeon.kernels.activation",
    "sglang_xeon.kernels.rope",
    "sglang_xeon.kernels.kv",
    "sglang_xeon.kernels.attention",
    "sglang_xeon.kernels.mla",
    "sglang_xeon.kernels.moe",
    "sglang_xeon.kernels.gemm",
    "sglang_xeon.kernels.gemm_fp8",
    "sglang_xeon.kernels.gemm_int4",
    "sglang_xeon.kernels.gemm_w8a16",
    "sglang_xeon.kernels.gemm_w4a8",
    "sglang_xeon.kernels.gemm_fp4",
    "sglang_xeon.kernels.sampling",
    "sglang_xeon.kernels.grammar",
    "sglang_xeon.kernels.ipex",
)
