"""The cuda kernels: the shared GPU kernels of sglang_triton (norm, activation, rope, kv,
attention, moe, gemm.dense, the W4A16 int4/fp4 GEMMs, sampling, the grammar mask), launched
with their module defaults (the tables were tuned on H100/H200), plus cuda's own modules:
gemm.dense at one row and moe.experts at decode (CUDA C++ GEMVs, where their launch tables
turn them on),
gemm.int8 (cuBLASLt int8), gemm.fp8 (torch._scaled_mm and the Triton scaled GEMM) and gemm.int4
at a few rows (a CUDA C++ tensor-core GEMV compiled by NVRTC, before the Triton kernels).
"""

from __future__ import annotations

import sglang_triton
from sglang.backend.plugin_kit import register_kernel_modules
from sglang_triton.target import TritonTarget

CUDA = TritonTarget("cuda", blas="cublas")

KERNEL_MODULES: tuple[str, ...] = (
    "sglang_cuda.kernels.dense",
    "sglang_cuda.kernels.gemm",
    "sglang_cuda.kernels.gemm_fp8",
    "sglang_cuda.kernels.gemm_int4",
    "sglang_cuda.kernels.moe",
)


def register(registry) -> None:
    register_kernel_modules(registry, sglang_triton.KERNEL_MODULES, target=CUDA)
    register_kernel_modules(registry, KERNEL_MODULES)
